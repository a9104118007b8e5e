import numpy as np

from anomask.evaluation.metrics.components import NO_SIZE_LIMITS, ComponentAccumulator
from anomask.evaluation.metrics.goss import GossAccumulator
from anomask.evaluation.metrics.panoptic import PanopticAccumulator
from anomask.evaluation.metrics.pixel_anomaly import pixel_anomaly_metrics
from anomask.evaluation.report import (
    OpenSetRow,
    anomaly_table,
    component_table,
    goss_table,
    open_set_table,
    panoptic_table,
)
from anomask.models.metadata import ClassInfo


def _pixel(shift: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = (rng.random(4000) < 0.2).astype(np.uint8)
    return pixel_anomaly_metrics((rng.normal(size=4000) + shift * labels).astype(np.float32), labels)


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.strip().splitlines()]


def test_anomaly_table_layout_best_in_bold_and_missing_as_dash():
    good, weak, other = _pixel(2.0, 0), _pixel(0.5, 1), _pixel(1.0, 2)
    table = anomaly_table({"eam": {"FS L&F": good, "Road Anomaly": other}, "msp": {"FS L&F": weak}})
    rows = _rows(table)
    assert rows[0] == ["Method", "FS L&F AuPRC ↑", "FS L&F FPR95 ↓", "Road Anomaly AuPRC ↑", "Road Anomaly FPR95 ↓"]
    assert rows[1] == ["---", "---:", "---:", "---:", "---:"]
    assert rows[2] == [
        "eam",
        f"**{100 * good.ap:.2f}**",
        f"**{100 * good.fpr95:.2f}**",
        f"{100 * other.ap:.2f}",
        f"{100 * other.fpr95:.2f}",
    ]
    assert rows[3] == ["msp", f"{100 * weak.ap:.2f}", f"{100 * weak.fpr95:.2f}", "-", "-"]


def test_component_open_set_panoptic_and_goss_tables():
    anomaly = np.zeros((20, 20), np.uint8)
    anomaly[2:8, 2:8] = 1
    components = ComponentAccumulator(0.5, NO_SIZE_LIMITS)
    components.update_mask(anomaly == 1, anomaly)
    rows = _rows(component_table({"eam": {"SMIYC RA21": components.result()}}))
    assert rows[0] == ["Method", "SMIYC RA21 sIoU ↑", "SMIYC RA21 PPV ↑", "SMIYC RA21 F1* ↑"]
    assert rows[2] == ["eam", "100.00", "100.00", "100.00"]

    row = OpenSetRow(pixel=_pixel(2.0, 3), miou=0.7, open_miou={"t5": (0.5, 100), "t6": (0.6, 300)})
    rows = _rows(open_set_table({"m2a": row}))
    assert rows[0][-3:] == ["Open-IoU t5 ↑", "Open-IoU t6 ↑", "Open-IoU ↑"]
    assert rows[2][-4:] == ["70.00", "50.00", "60.00", "57.50"]  # image-weighted: (50*100 + 60*300) / 400

    classes = (ClassInfo("road", False, (0, 0, 0)), ClassInfo("car", True, (0, 0, 0)))
    truth = np.zeros((10, 10), np.int32)
    truth[2:6, 2:6] = 1001
    truth[7:9, 7:9] = 254001
    panoptic, goss = PanopticAccumulator(classes), GossAccumulator(classes)
    panoptic.update(truth, truth)
    goss.update(truth, truth)
    rows = _rows(panoptic_table({"m2a": panoptic.result()}))
    assert rows[0][1:] == [
        "PQ_Th ↑",
        "SQ_Th ↑",
        "RQ_Th ↑",
        "PQ_St ↑",
        "SQ_St ↑",
        "RQ_St ↑",
        "PQ ↑",
        "SQ ↑",
        "RQ ↑",
        "PQ_unk ↑",
        "SQ_unk ↑",
        "RQ_unk ↑",
    ]
    assert rows[2][1:] == ["100.00"] * 12
    assert _rows(goss_table({"gst": goss.result()}))[2] == ["gst", "100.00", "100.00", "100.00"]


def test_nan_cells_print_as_dash():
    classes = (ClassInfo("road", False, (0, 0, 0)), ClassInfo("car", True, (0, 0, 0)))
    panoptic = PanopticAccumulator(classes)
    panoptic.update(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32))  # no things, no unknown
    row = _rows(panoptic_table({"m": panoptic.result()}))[2]
    assert row[1:4] == ["-", "-", "-"] and row[-3:] == ["-", "-", "-"]
    assert row[4:7] == ["100.00"] * 3
