"""Open-set threshold sources: ``auto`` uses a checkpoint's stored thresholds only when its
metadata records calibration images that are not evaluated; which images a dataset spec
reads (root + split)."""

import inspect
import json
from dataclasses import replace

import numpy as np

from anomask.evaluation import readers
from anomask.evaluation.eval_data import DEFAULT_SPLITS, EvalDataset, holds_calibration, parse_dataset
from anomask.evaluation.evaluate import EvalSettings, evaluate
from anomask.evaluation.thresholds import HALF_NAMES
from anomask.models import load_checkpoint, save_checkpoint

from .conftest import CALIBRATED_EAM

FUNCTIONS = {
    "lostandfound": readers.lost_and_found,
    "streethazards": readers.streethazards,
    "coco-open-panoptic": readers.coco_open_panoptic,
    "cityscapes": readers.cityscapes,
    "synthetic-anomaly": readers.synthetic_anomaly,
}


def _with_calibration(tiny_checkpoint, path, root, split):
    network, metadata = load_checkpoint(tiny_checkpoint)
    record = {
        "dataset": str(root),
        "root": str(root),
        "split": split,
        "test_split": split == "anomaly",
        "tpr": 0.95,
        "images": 2,
        "score": "eam",
    }
    return save_checkpoint(path, network, replace(metadata, extra={**metadata.extra, "calibration": record}))


def test_auto_uses_stored_thresholds_calibrated_on_other_images_only(
    tiny_synthetic, tiny_checkpoint, tmp_path, one_thread
):
    settings = EvalSettings(tasks=("open-set",), panels=0, progress=False)
    spec = f"synthetic={tiny_synthetic}"
    held_out = _with_calibration(tiny_checkpoint, tmp_path / "val.safetensors", tiny_synthetic, "anomaly_val")
    metrics = evaluate(held_out, [spec], ["eam", "msp"], settings=settings)
    result = metrics["datasets"]["synthetic-anomaly"]
    assert result["thresholds"]["eam"] == {"all": CALIBRATED_EAM}  # stored: calibrated on anomaly_val
    assert set(result["thresholds"]["msp"]) == set(HALF_NAMES)  # no stored msp threshold: halves
    assert set(result["open_set"]["eam"]["splits"]) == {"all"} and set(result["open_set"]["msp"]["splits"]) == set(
        HALF_NAMES
    )
    source = metrics["settings"]["thresholds"]  # also the report header's "open-set thresholds" line
    assert (
        source.startswith("auto -> checkpoint for eam (calibrated on split 'anomaly_val'")
        and "halves for msp" in source
    )

    leaked = _with_calibration(tiny_checkpoint, tmp_path / "test.safetensors", tiny_synthetic, "anomaly")
    metrics = evaluate(leaked, [spec], ["eam"], settings=settings)
    assert set(metrics["datasets"]["synthetic-anomaly"]["thresholds"]["eam"]) == set(HALF_NAMES)
    assert "which is evaluated here (synthetic-anomaly)" in metrics["settings"]["thresholds"]
    metrics = evaluate(tiny_checkpoint, [spec], ["eam"], settings=settings)  # no record at all
    assert "records no calibration split" in metrics["settings"]["thresholds"]
    settings = EvalSettings(tasks=("open-set",), thresholds="checkpoint", panels=0, progress=False)
    metrics = evaluate(leaked, [spec], ["eam"], settings=settings)  # asked for explicitly: used, with a note
    assert metrics["datasets"]["synthetic-anomaly"]["thresholds"]["eam"] == {"all": CALIBRATED_EAM}
    assert any("optimistic" in note for note in metrics["notes"])


def test_which_datasets_hold_the_calibration_images(tiny_synthetic):
    record = {"root": str(tiny_synthetic), "split": "anomaly_val"}
    synthetic = {e.name: e for e in parse_dataset(f"synthetic={tiny_synthetic}")}
    assert not holds_calibration(synthetic["synthetic-anomaly"], record) and not holds_calibration(
        synthetic["synthetic-val"], record
    )
    (validation,) = parse_dataset(f"synthetic-anomaly={tiny_synthetic},split=anomaly_val")
    assert holds_calibration(validation, record) and len(validation) == 2
    (folder,) = parse_dataset(f"fishyscapes-static={tiny_synthetic / 'anomaly_val'}")  # the same folder, another reader
    assert holds_calibration(folder, record)
    assert not holds_calibration(EvalDataset("in memory", None), record)
    for name, split in DEFAULT_SPLITS.items():  # the table follows the readers' own defaults
        assert inspect.signature(FUNCTIONS[name]).parameters["split"].default == split


def test_calibrating_on_the_validation_split_of_the_evaluated_root_is_allowed(
    tiny_synthetic, tiny_checkpoint, one_thread
):
    spec = f"synthetic-anomaly={tiny_synthetic},split=anomaly_val"
    settings = EvalSettings(tasks=("open-set",), thresholds=spec, panels=0, progress=False)
    metrics = evaluate(tiny_checkpoint, [f"synthetic-anomaly={tiny_synthetic}"], ["eam"], settings=settings)
    assert set(metrics["datasets"]["synthetic-anomaly"]["thresholds"]["eam"]) == {"all"}
    assert json.dumps(metrics["settings"]["thresholds"]).startswith(
        '"calibrated at 95 % TPR on synthetic-anomaly[split=anomaly_val]'
    )
    assert np.isfinite(metrics["datasets"]["synthetic-anomaly"]["thresholds"]["eam"]["all"])
