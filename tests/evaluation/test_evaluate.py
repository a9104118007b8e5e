"""``anomask eval`` on the synthetic default: the report is written and every number in
metrics.json equals the metrics computed directly on the model's outputs -- recomputed here
on an independent path (the network and ``FusedHeads`` with the open-set threshold inside,
the heads' own calibration, all-in-memory pixel metrics, panoptic maps through the panoptic
encoding). The model is a randomly initialised small checkpoint (no training: the equality
of the numbers is the point). Plus the threshold sources and bad inputs."""

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from anomask.cli import main
from anomask.errors import AnomaskError
from anomask.evaluation.eval_data import EvalDataset
from anomask.evaluation.evaluate import EvalSettings, evaluate
from anomask.evaluation.metrics.components import ANOMALY_TRACK, ComponentAccumulator
from anomask.evaluation.metrics.goss import GossAccumulator
from anomask.evaluation.metrics.panoptic import PanopticAccumulator
from anomask.evaluation.metrics.pixel_anomaly import pixel_anomaly_metrics
from anomask.evaluation.metrics.semantic import OpenSetAccumulator, SemanticAccumulator
from anomask.models import load_checkpoint, save_checkpoint
from anomask.models.heads import (
    FusedHeads,
    OpenPanopticConfig,
    goss_images,
    panoptic_images,
    panoptic_labels,
    threshold_at_tpr,
)
from anomask.training.data import CityscapesDataset
from anomask.training.data.imageio import write_png
from anomask.training.data.synthetic import SyntheticAnomalyDataset

from .conftest import CALIBRATED_EAM

SCORES = ("eam", "msp", "rba")
MIN_AREA = 4
"""Unknown instances of 4+ px: the 64x128 anomalies are far below the default 200 px."""
HALVES = (("first half", (0, 1), (2, 3)), ("second half", (2, 3), (0, 1)))
"""(split, its images, the images its threshold comes from)."""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_synthetic, tiny_checkpoint, one_thread):
    out = tmp_path_factory.mktemp("eval")
    status = main(
        [
            "eval",
            str(tiny_checkpoint),
            "--dataset",
            f"synthetic={tiny_synthetic}",
            "--scores",
            *SCORES,
            "--out",
            str(out),
            "--min-area",
            str(MIN_AREA),
            "--panels",
            "2",
            "--no-progress",
        ]
    )
    assert status == 0
    return out, json.loads((out / "metrics.json").read_text())


def _plain(value):
    """A result dict as it reads back from metrics.json (NaN -> null, tuples -> lists)."""
    return json.loads(json.dumps(value).replace("NaN", "null"))


class Direct:
    """The model's outputs on each image, straight from the network and ``FusedHeads``."""

    def __init__(self, checkpoint):
        self.network, self.metadata = load_checkpoint(checkpoint)
        self.mean = torch.tensor(self.metadata.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(self.metadata.std).view(1, 3, 1, 1)

    @torch.inference_mode()
    def __call__(self, image, score="eam", threshold=0.0):
        x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() - self.mean) / self.std  # 64x128: no padding
        out = self.network(x)
        heads = FusedHeads(self.metadata, score=score, output_size=image.shape[:2])
        return {
            k: v[0].numpy() for k, v in heads(out["pred_logits"], out["pred_masks"], torch.tensor(threshold)).items()
        }


def _truth_panoptic(sample, metadata):
    semantic, instances = sample["semantic"].astype(np.int32), sample["instances"]
    thing = np.isin(semantic, metadata.thing_ids) | (semantic == 254)
    return np.where(thing & (instances > 0), semantic * 1000 + instances, semantic)


def test_report_files_and_tables(cli_run):
    out, metrics = cli_run
    report = (out / "report.md").read_text()
    for title in (
        "Anomaly segmentation: pixel level",
        "Anomaly segmentation: component level (SMIYC)",
        "Closed-set semantic segmentation",
        "Open-set semantic segmentation: synthetic-anomaly",
        "Open-set panoptic segmentation: synthetic-anomaly",
        "GOSS: synthetic-anomaly",
        "Qualitative results",
    ):
        assert f"## {title}" in report
    ap = metrics["datasets"]["synthetic-anomaly"]["anomaly"]["synthetic-anomaly (unseen)"]["msp"]["ap"]
    assert (
        f"{100 * ap:.2f}"
        in report.split("## Anomaly segmentation: pixel level")[1].split("\n| msp |")[1].splitlines()[0]
    )
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {
        "curves_synthetic_anomaly.png",
        "curves_synthetic_anomaly_seen.png",
        "curves_synthetic_anomaly_unseen.png",
    } <= plots
    assert {
        "histograms_synthetic_anomaly.png",
        "panel_synthetic_anomaly_0.png",
        "panel_synthetic_anomaly_1.png",
    } <= plots
    assert len(plots) == 3 + 1 + 2
    assert not [p for p in out.iterdir() if p.name.startswith(".anomask-eval-")], "the temporary maps were not removed"
    assert metrics["model"]["scores"] == list(SCORES)
    assert metrics["datasets"]["synthetic-val"]["tasks"] == ["semantic"]
    assert metrics["datasets"]["synthetic-anomaly"]["tasks"] == [
        "anomaly",
        "components",
        "semantic",
        "open-set",
        "panoptic",
        "goss",
    ]


def test_numbers_equal_the_metrics_computed_directly(cli_run, tiny_synthetic, tiny_checkpoint, one_thread):
    _, metrics = cli_run
    direct = Direct(tiny_checkpoint)
    metadata = direct.metadata
    val, anomaly_set = CityscapesDataset(tiny_synthetic, "val"), SyntheticAnomalyDataset(tiny_synthetic)
    samples = [anomaly_set[i] for i in range(4)]
    result = metrics["datasets"]["synthetic-anomaly"]

    closed = SemanticAccumulator(metadata.num_classes)
    for i in range(len(val)):
        closed.update(direct(val[i]["image"])["semantic"], val[i]["semantic"])
    assert metrics["datasets"]["synthetic-val"]["semantic"] == _plain(closed.result().to_dict())

    # Pixel metrics (all pixels pooled in memory) and SMIYC components at the best-F1 threshold.
    scores = {s: [direct(sample["image"], s)["anomaly"] for sample in samples] for s in SCORES}
    labels = [sample["anomaly"] for sample in samples]
    groups = {"synthetic-anomaly": range(4), "synthetic-anomaly (seen)": (0, 2), "synthetic-anomaly (unseen)": (1, 3)}
    assert [anomaly_set.group(i) for i in range(4)] == ["seen", "unseen", "seen", "unseen"]
    settings = ANOMALY_TRACK.scaled(64, 128)
    for subset, images in groups.items():
        for score in SCORES:
            pixel = pixel_anomaly_metrics(
                np.stack([scores[score][i] for i in images]), np.stack([labels[i] for i in images])
            )
            assert result["anomaly"][subset][score] == _plain(
                {**pixel.to_dict(), "images": len(images)}
            )  # pooled as one
            components = ComponentAccumulator(pixel.best_f1_threshold, settings)
            for i in images:
                components.update(scores[score][i], labels[i])
            assert result["components"][subset][score] == _plain(components.result().to_dict())
    assert result["component_sizes"] == {"min_predicted": 2, "min_gt": 1}

    # Open-set thresholds: the heads' own calibration on the other half; open-IoU from the
    # heads' open_set map computed with that threshold inside FusedHeads.
    for score in SCORES:
        for split, images, calibration in HALVES:
            threshold = threshold_at_tpr(
                np.stack([scores[score][i] for i in calibration]), np.stack([labels[i] for i in calibration])
            )
            assert result["thresholds"][score][split] == threshold
            open_set = OpenSetAccumulator(metadata.num_classes, threshold=0.5)
            for i in images:
                out = direct(samples[i]["image"], score, threshold)
                open_set.update(out["semantic"], (out["open_set"] == 254).astype(np.float32), samples[i]["semantic"])
            expected = open_set.result()
            assert result["open_set"][score]["splits"][split]["open_miou"] == expected.open_miou
            assert result["open_set"][score]["splits"][split]["open_iou"] == _plain(list(expected.open_iou))

    # Open-set panoptic and GOSS from the primary score (eam) at each half's threshold.
    config = OpenPanopticConfig(min_area=MIN_AREA)
    panoptic = {
        method: PanopticAccumulator(metadata.classes) for method in ("closed-set", "mining", "eam", "components")
    }
    goss = GossAccumulator(metadata.classes)
    for split, images, _ in HALVES:
        for i in images:
            out = direct(samples[i]["image"], "eam", result["thresholds"]["eam"][split])
            batch = {k: v[None] for k, v in out.items()}
            truth = _truth_panoptic(samples[i], metadata)
            for method, accumulator in panoptic.items():
                accumulator.update(panoptic_images(batch, metadata, method, config)[0], truth)
            goss.update(goss_images(batch)[0], truth)
    for method, accumulator in panoptic.items():
        assert result["panoptic"][method] == _plain(accumulator.result().to_dict())
    assert result["goss"] == _plain(goss.result().to_dict())
    fp = sum(category["fp"] for method in result["panoptic"].values() for category in method["per_category"].values())
    assert fp > 0, "the panoptic comparison saw no predicted segments at all"


def test_checkpoint_thresholds_and_calibration_on_another_dataset(tiny_synthetic, tiny_checkpoint, one_thread, capsys):
    anomaly_spec = f"synthetic-anomaly={tiny_synthetic}"
    settings = EvalSettings(tasks=("open-set",), thresholds="checkpoint", panels=0)
    metrics = evaluate(tiny_checkpoint, [anomaly_spec], ["eam"], settings=settings)
    assert metrics["datasets"]["synthetic-anomaly"]["thresholds"] == {"eam": {"all": CALIBRATED_EAM}}
    assert "synthetic-anomaly: network: 100%" in capsys.readouterr().err  # the progress bar
    settings = EvalSettings(tasks=("open-set",), thresholds="checkpoint", panels=0, progress=False)
    with pytest.raises(AnomaskError, match="no threshold 'msp@tpr95'"):
        evaluate(tiny_checkpoint, [anomaly_spec], ["msp"], settings=settings)
    # A named calibration dataset: never one of the evaluated ones.
    with pytest.raises(AnomaskError, match="never taken on the test images"):
        evaluate(
            tiny_checkpoint, [anomaly_spec], ["eam"], settings=EvalSettings(thresholds=anomaly_spec, progress=False)
        )
    held_out = EvalDataset("held-out", SyntheticAnomalyDataset(tiny_synthetic))
    settings = EvalSettings(tasks=("open-set",), thresholds=anomaly_spec, limit=2, panels=0, progress=False)
    metrics = evaluate(tiny_checkpoint, [held_out], ["eam"], settings=settings)
    direct = Direct(tiny_checkpoint)
    calibration = [SyntheticAnomalyDataset(tiny_synthetic)[i] for i in range(2)]
    expected = threshold_at_tpr(
        np.stack([direct(s["image"])["anomaly"] for s in calibration]), np.stack([s["anomaly"] for s in calibration])
    )
    assert metrics["datasets"]["held-out"]["thresholds"] == {"eam": {"all": expected}}


CAR_FIRST = (9, 0, 1, 2, 3, 4, 5, 6, 7, 8)
"""The synthetic classes reordered so that class 0 is a thing (car), as COCO's person is."""


class CarFirst:
    """The synthetic anomaly split with its class ids in ``CAR_FIRST`` order."""

    def __init__(self, root):
        self.base = SyntheticAnomalyDataset(root)
        self.classes = tuple(self.base.classes[i] for i in CAR_FIRST)
        self.lut = np.arange(256, dtype=np.uint8)
        self.lut[list(CAR_FIRST)] = np.arange(len(CAR_FIRST))

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        sample = dict(self.base[index])
        sample["semantic"] = self.lut[sample["semantic"]]
        return sample


def test_open_set_panoptic_is_scored_when_class_0_is_a_thing(tiny_synthetic, tiny_checkpoint, tmp_path, one_thread):
    """The (class, instance) pairs of the heads reach PQ: no skipped task, the numbers of an
    independent computation with ``panoptic_labels`` + ``update_labels``."""
    network, metadata = load_checkpoint(tiny_checkpoint)
    metadata = replace(metadata, classes=tuple(metadata.classes[i] for i in CAR_FIRST))
    checkpoint = save_checkpoint(tmp_path / "car_first.safetensors", network, metadata)
    config = OpenPanopticConfig(min_area=MIN_AREA)
    settings = EvalSettings(tasks=("open-set", "panoptic"), panoptic=config, panels=0, progress=False)
    metrics = evaluate(checkpoint, [EvalDataset("car-first", CarFirst(tiny_synthetic))], ["eam"], settings=settings)
    result = metrics["datasets"]["car-first"]
    assert "panoptic" in result["tasks"] and not any("skipped" in note for note in metrics["notes"])
    direct, dataset = Direct(checkpoint), CarFirst(tiny_synthetic)
    panoptic = {
        method: PanopticAccumulator(metadata.classes) for method in ("closed-set", "mining", "eam", "components")
    }
    for split, images, _ in HALVES:
        for i in images:
            out = direct(dataset[i]["image"], "eam", result["thresholds"]["eam"][split])
            for method, accumulator in panoptic.items():
                labels = panoptic_labels({k: v[None] for k, v in out.items()}, metadata, method, config)
                accumulator.update_labels(
                    labels.classes[0], labels.instances[0], dataset[i]["semantic"], dataset[i]["instances"]
                )
    for method, accumulator in panoptic.items():
        assert result["panoptic"][method] == _plain(accumulator.result().to_dict())
    car = result["panoptic"]["closed-set"]["per_category"]["car"]
    assert car["tp"] + car["fp"] > 0, "no class-0 thing segment was predicted: the case is not exercised"


class InMemory:
    classes = ()

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


def _fishyscapes(root, label):
    write_png(root / "images" / "a.png", np.full((64, 128, 3), 90, np.uint8))
    write_png(root / "labels_masks" / "a.png", label)
    return f"fishyscapes-static={root}"


def test_bad_inputs_name_the_file(tmp_path, tiny_synthetic, tiny_checkpoint, one_thread):
    quiet = EvalSettings(progress=False, panels=0)
    image = np.zeros((64, 128, 3), np.uint8)
    with pytest.raises(AnomaskError, match="missing.safetensors: model file not found"):
        evaluate(tmp_path / "missing.safetensors", [f"synthetic={tiny_synthetic}"])
    with pytest.raises(AnomaskError, match="nowhere"):
        evaluate(tiny_checkpoint, [f"fishyscapes-static={tmp_path / 'nowhere'}"], settings=quiet)
    with pytest.raises(AnomaskError, match="empty"):
        evaluate(tiny_checkpoint, [EvalDataset("empty", InMemory([]))], settings=quiet)
    with pytest.raises(AnomaskError, match="no images found"):
        (tmp_path / "none" / "images").mkdir(parents=True)
        evaluate(tiny_checkpoint, [f"fishyscapes-static={tmp_path / 'none'}"], settings=quiet)
    mismatch = InMemory([{"image": image, "anomaly": np.zeros((32, 64), np.uint8), "name": "frame_7.png"}])
    with pytest.raises(AnomaskError, match="anomaly ground truth in frame_7.png is 32x64 but the image is 64x128"):
        evaluate(tiny_checkpoint, [EvalDataset("mismatch", mismatch)], settings=quiet)
    bad_values = np.zeros((64, 128), np.uint8)
    bad_values[:4, :4] = 7
    with pytest.raises(AnomaskError, match=r"values 7 in .*labels_masks/a\.png"):
        evaluate(tiny_checkpoint, [_fishyscapes(tmp_path / "values", bad_values)], settings=quiet)
    with pytest.raises(AnomaskError, match=r"labels_masks/a\.png"):
        evaluate(tiny_checkpoint, [_fishyscapes(tmp_path / "size", np.zeros((32, 64), np.uint8))], settings=quiet)
    spec = _fishyscapes(tmp_path / "missing", np.zeros((64, 128), np.uint8))
    write_png(tmp_path / "missing" / "images" / "b.png", image)
    with pytest.raises(AnomaskError, match=r"labels_masks/b\.png"):  # the second image's label file is missing
        evaluate(tiny_checkpoint, [spec], ["eam"], settings=quiet)


def test_bad_requests(tmp_path, tiny_synthetic, tiny_checkpoint, one_thread):
    spec = f"synthetic-anomaly={tiny_synthetic}"
    with pytest.raises(AnomaskError, match="unknown anomaly score 'nope'"):
        evaluate(tiny_checkpoint, [spec], ["nope"])
    with pytest.raises(AnomaskError, match="negative-objectness"):
        evaluate(tiny_checkpoint, [spec], ["uno"])
    other = InMemory([{"image": np.zeros((64, 128, 3), np.uint8)}])
    other.classes = SyntheticAnomalyDataset(tiny_synthetic).classes[:3]
    other = EvalDataset("other classes", other)
    with pytest.raises(AnomaskError, match="has the classes"):
        evaluate(tiny_checkpoint, [other])
    with pytest.raises(AnomaskError, match="datasets named more than once"):
        evaluate(tiny_checkpoint, [spec, spec])
    with pytest.raises(AnomaskError, match="cannot calibrate the first half's threshold on the second half"):
        evaluate(tiny_checkpoint, [spec], ["eam"], settings=EvalSettings(tasks=("open-set",), limit=1, progress=False))
    with pytest.raises(AnomaskError, match="unknown tasks"):
        evaluate(tiny_checkpoint, [spec], settings=EvalSettings(tasks=("anomalies",)))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image_is_refused_naming_the_file(suffix, tmp_path, tiny_checkpoint, one_thread, capfd):
    """Issue 17: a truncated JPEG was scored (three quarters grey) with exit 0, the only sign
    libjpeg's warning naming no file; a truncated PNG was refused after "libpng error" noise."""
    root = tmp_path / "fishyscapes"
    image = np.random.default_rng(0).integers(0, 256, (64, 128, 3), np.uint8)
    data = cv2.imencode(suffix, image)[1].tobytes()
    (root / "images").mkdir(parents=True)
    (root / "images" / f"a{suffix}").write_bytes(data[: len(data) * 3 // 4])
    write_png(root / "labels_masks" / "a.png", np.zeros((64, 128), np.uint8))
    argv = ["eval", str(tiny_checkpoint), "--dataset", f"fishyscapes-static={root}", "--out", str(tmp_path / "out")]
    assert main([*argv, "--no-progress", "--panels", "0"]) == 2
    kind = "JPEG" if suffix == ".jpg" else "PNG"
    assert capfd.readouterr().err.splitlines() == [
        f"anomask: error: {root / 'images' / f'a{suffix}'}: truncated {kind} ({len(data) * 3 // 4} bytes, "
        f"no {'end-of-image marker' if kind == 'JPEG' else 'IEND chunk'}), refused"
    ]


def test_plots_of_an_earlier_run_are_removed(tmp_path, tiny_synthetic, tiny_checkpoint, one_thread):
    """Issue 17: panel PNGs of an earlier eval stayed in plots/, passing for this run's."""
    out = tmp_path / "eval"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "panel_synthetic_anomaly_3.png").write_bytes(b"an earlier run's panel")
    (out / "plots" / "curves_fishyscapes_static.png").write_bytes(b"an earlier run's curves")
    argv = ["eval", str(tiny_checkpoint), "--dataset", f"synthetic-anomaly={tiny_synthetic}", "--out", str(out)]
    assert main([*argv, "--scores", "eam", "--tasks", "anomaly", "--panels", "1", "--limit", "2", "--no-progress"]) == 0
    report = (out / "report.md").read_text()
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert "panel_synthetic_anomaly_0.png" in plots and "panel_synthetic_anomaly_3.png" not in plots
    assert "curves_fishyscapes_static.png" not in plots
    assert all(f"(plots/{name})" in report for name in plots)


def test_the_protocol_is_recorded_and_official_uses_the_official_heads(
    tmp_path, tiny_synthetic, tiny_checkpoint, one_thread
):
    spec = f"synthetic-anomaly={tiny_synthetic}"
    settings = EvalSettings(tasks=("anomaly",), panels=0, progress=False)
    default = evaluate(tiny_checkpoint, [spec], ["eam"], tmp_path / "default", settings=settings)
    official = evaluate(tiny_checkpoint, [spec], ["eam"], tmp_path / "official", settings=settings, protocol="official")
    assert default["settings"]["protocol"] == "anomask" and official["settings"]["protocol"] == "official"
    assert "| protocol | official (" in (tmp_path / "official" / "report.md").read_text()
    assert json.loads((tmp_path / "official" / "metrics.json").read_text())["settings"]["protocol"] == "official"
    # The official numbers are those of the masks-first heads on every image.
    direct = Direct(tiny_checkpoint)
    data = SyntheticAnomalyDataset(tiny_synthetic)
    scores, labels = [], []
    for sample in data:
        x = (torch.from_numpy(sample["image"]).permute(2, 0, 1)[None].float() - direct.mean) / direct.std
        with torch.inference_mode():
            out = direct.network(x)
            heads = FusedHeads(direct.metadata, score="eam", output_size=(64, 128), protocol="official")
            scores.append(heads(out["pred_logits"], out["pred_masks"], torch.tensor(0.0))["anomaly"][0].numpy())
        labels.append(sample["anomaly"])
    expected = pixel_anomaly_metrics(np.stack(scores), np.stack(labels))
    got = official["datasets"]["synthetic-anomaly"]["anomaly"]["synthetic-anomaly"]["eam"]
    assert got["ap"] == pytest.approx(expected.ap, abs=1e-12)
    assert got["ap"] != default["datasets"]["synthetic-anomaly"]["anomaly"]["synthetic-anomaly"]["eam"]["ap"]
