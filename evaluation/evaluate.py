"""``evaluate``: one model, one or more datasets, every requested score, one network pass.

For each dataset:

1. **Pass 1** (network): each image goes through the network once (``predictors``); every
   score's anomaly map comes from that one output through the heads. Metrics that need no
   dataset-level threshold are accumulated at once: pixel AP / AUROC / FPR95 per score (for
   the whole dataset, each anomaly group -- seen / unseen on the synthetic default -- and,
   for ``halves`` thresholds, each half), closed-set mIoU. What the threshold-dependent
   metrics need is written to an on-disk ``ImageStore`` (score maps, the first score's heads
   output, ground truth; the image itself for the first ``panels`` images).
2. Thresholds: per score and anomaly subset the best pixel-F1 threshold (SMIYC components);
   per score the open-set threshold at 95 % TPR, fixed (checkpoint, calibration dataset) or
   for each half the other half's (``thresholds``).
3. **Pass 2** (stored maps, no network): SMIYC sIoU / PPV / F1*, open-IoU, open-set panoptic
   (closed-set Mask2Former plus each open-set method) and GOSS -- the open-set maps redone
   at the chosen threshold with the heads' own ``open_set_semantic`` -- and the qualitative
   panels.

Memory: accumulators are bounded (``PixelAnomalyAccumulator`` at most ``max_bins`` rows
each), one image's arrays at a time; the store's disk use is about (4 x scores + 14) bytes
per pixel.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from anomask.errors import AnomaskError
from anomask.evaluation.eval_data import (
    TASKS,
    EvalDataset,
    check_classes,
    dataset_tasks,
    default_synthetic_root,
    parse_dataset,
    same_images,
    synthetic_datasets,
)
from anomask.evaluation.image_store import ImageStore
from anomask.evaluation.metrics.components import ComponentAccumulator, ComponentResult
from anomask.evaluation.metrics.goss import GossAccumulator, GossResult
from anomask.evaluation.metrics.inputs import where
from anomask.evaluation.metrics.panoptic import PanopticAccumulator, PanopticResult
from anomask.evaluation.metrics.pixel_anomaly import (
    PixelAnomalyAccumulator,
    PixelAnomalyResult,
    ScoreCurves,
    ScoreHistogram,
)
from anomask.evaluation.metrics.semantic import OpenSetAccumulator, OpenSetResult, SemanticAccumulator, SemanticResult
from anomask.evaluation.predictors import ImageOutputs, Predictor, open_predictor
from anomask.evaluation.thresholds import (
    ALL,
    AUTO,
    CHECKPOINT,
    HALF_NAMES,
    HALVES,
    HALVES_MEANING,
    auto_thresholds,
    calibration_conflicts,
    checkpoint_thresholds,
    describe_calibration,
    half_of,
    heads_threshold,
    metric_threshold,
)
from anomask.export.export_info import PANOPTIC_OUTPUTS
from anomask.models.heads import (
    OpenPanopticConfig,
    PanopticLabels,
    goss_labels,
    open_set_panoptic_labels,
    open_set_semantic,
)
from anomask.models.metadata import ClassInfo
from anomask.models.panoptic_methods import CLOSED_SET, OPEN_SET_METHODS

HALF_MAX_BINS = 1 << 16
"""Rows of the per-half tables, which only give a 95 % TPR threshold (a coarsened table's
threshold is a bin's lower edge: TPR stays >= 95 %)."""


@dataclass(frozen=True)
class EvalSettings:
    tasks: tuple[str, ...] = TASKS
    thresholds: str = AUTO
    """``auto``, ``halves``, ``checkpoint`` or a calibration dataset spec (``thresholds`` module)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` images of each dataset."""
    panels: int = 4
    panoptic_methods: tuple[str, ...] = OPEN_SET_METHODS
    panoptic: OpenPanopticConfig = OpenPanopticConfig()
    progress: bool = True
    tmp_dir: str | None = None
    pixel_max_bins: int = 1 << 18
    """Rows of each reported pixel table (``PixelAnomalyAccumulator.max_bins``; 5 MB, up to
    twice that with its merge queue): exact below that many distinct scores, else exact for
    the scores truncated to the ``mantissa_bits`` the result states. There is one table per
    score and anomaly subset, so the default keeps 7 scores x 3 subsets near 200 MB."""


@dataclass
class Panel:
    name: str
    image: np.ndarray
    anomaly: np.ndarray
    score: np.ndarray
    panoptic: PanopticLabels | None


@dataclass
class DatasetResults:
    name: str
    root: str
    images: int
    tasks: tuple[str, ...]
    subsets: dict[str, int] = field(default_factory=dict)
    """Anomaly subsets (the dataset, then ``name (group)``) and their image counts."""
    pixel: dict[str, dict[str, PixelAnomalyResult]] = field(default_factory=dict)
    curves: dict[str, dict[str, ScoreCurves]] = field(default_factory=dict)
    histograms: dict[str, dict[str, ScoreHistogram]] = field(default_factory=dict)
    components: dict[str, dict[str, ComponentResult]] = field(default_factory=dict)
    component_sizes: tuple[int, int] | None = None
    semantic: SemanticResult | None = None
    splits: dict[str, int] = field(default_factory=dict)
    """Threshold splits (``first half`` / ``second half`` and/or ``all``) and their image counts."""
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    """``thresholds[score][split]``: the open-set threshold (heads convention, ``score > t``)."""
    open_set: dict[str, dict[str, OpenSetResult]] = field(default_factory=dict)
    panoptic: dict[str, PanopticResult] = field(default_factory=dict)
    goss: GossResult | None = None
    panels: list[Panel] = field(default_factory=list)
    store_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"root": self.root, "images": self.images, "tasks": list(self.tasks)}
        if self.pixel:
            data["subsets"] = dict(self.subsets)
            data["anomaly"] = {s: {k: r.to_dict() for k, r in per.items()} for s, per in self.pixel.items()}
        if self.components:
            data["components"] = {s: {k: r.to_dict() for k, r in per.items()} for s, per in self.components.items()}
            data["component_sizes"] = {"min_predicted": self.component_sizes[0], "min_gt": self.component_sizes[1]}
        if self.semantic is not None:
            data["semantic"] = self.semantic.to_dict()
        if self.open_set:
            data["open_set"] = {
                score: {
                    "splits": {
                        split: {**result.to_dict(), "images": self.splits[split]} for split, result in per.items()
                    },
                    "open_miou": overall_open_miou(per, self.splits),
                }
                for score, per in self.open_set.items()
            }
        if self.thresholds:
            data["thresholds"] = self.thresholds
        if self.panoptic:
            data["panoptic"] = {method: result.to_dict() for method, result in self.panoptic.items()}
        if self.goss is not None:
            data["goss"] = self.goss.to_dict()
        return data


def overall_open_miou(per_split: dict[str, OpenSetResult], images: dict[str, int]) -> float:
    """Image-weighted mean of the splits' open-mIoU (Mask2Anomaly (Rai et al., 2024), §7.4)."""
    total = sum(images[split] for split in per_split)
    return sum(result.open_miou * images[split] for split, result in per_split.items()) / total


class DatasetEvaluation:
    """Both passes over one dataset (module docstring)."""

    def __init__(
        self, entry: EvalDataset, predictor: Predictor, settings: EvalSettings, thresholds: dict[str, float]
    ) -> None:
        self.entry = entry
        self.predictor = predictor
        self.settings = settings
        self.count = len(entry) if settings.limit is None else min(len(entry), settings.limit)
        if self.count == 0:
            raise AnomaskError(f"dataset {entry.name} ({entry.root or 'in memory'}) is empty: no images to evaluate")
        self.fixed_thresholds = thresholds
        """Scores with a fixed open-set threshold (heads convention); the others use halves."""
        self.scores = predictor.scores
        metadata = predictor.metadata
        check_classes(entry, metadata, predictor.source)
        first = entry.dataset[0]
        available = dataset_tasks(entry, first, predictor.has_panoptic)
        self.tasks = tuple(t for t in available if t in settings.tasks)
        self.notes: list[str] = []
        if (
            "panoptic" in settings.tasks
            and "instances" in first
            and "open-set" in available
            and "panoptic" not in available
        ):
            self.notes.append(
                f"{entry.name}: open-set panoptic skipped (the model's outputs carry no panoptic intermediates)"
            )
        halves = any(score not in thresholds for score in self.scores)
        self.split_names = (HALF_NAMES if halves else ()) + ((ALL,) if thresholds else ())
        self.components = entry.components
        if entry.scale_components:
            self.components = entry.components.scaled(*first["image"].shape[:2])
        self.subsets: dict[str, int] = {entry.name: 0}
        self.pixel: dict[str, dict[str, PixelAnomalyAccumulator]] = {}
        self.half_pixel = [{s: PixelAnomalyAccumulator(HALF_MAX_BINS) for s in self.scores} for _ in HALF_NAMES]
        self.semantic = SemanticAccumulator(metadata.num_classes) if self._needs("semantic", "open-set") else None
        self.thresholded = self._needs("open-set", "panoptic", "goss")
        """Whether open-set thresholds are needed (open-IoU, open-set panoptic, GOSS)."""
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        """Wall and process CPU time of the network and heads (CPU time: all threads)."""

    def _needs(self, *tasks: str) -> bool:
        return any(t in self.tasks for t in tasks)

    def _split(self, index: int, score: str) -> str:
        """The threshold split of image ``index`` for ``score``: ``all`` for a fixed threshold."""
        return ALL if score in self.fixed_thresholds else HALF_NAMES[half_of(index, self.count)]

    def _subsets(self, index: int) -> list[str]:
        group = self.entry.group(index) if self.entry.group is not None else None
        return [self.entry.name] + ([f"{self.entry.name} ({group})"] if group else [])

    # -- pass 1 --------------------------------------------------------------------------
    def first_pass(self, store: ImageStore) -> None:
        bar = tqdm(
            range(self.count),
            desc=f"{self.entry.name}: network",
            unit="img",
            disable=not self.settings.progress,
            dynamic_ncols=True,
        )
        for index in bar:
            sample = self.entry.dataset[index]
            name = str(sample.get("name") or f"{self.entry.name}[{index}]")
            check_sample(sample, name, self.tasks)
            wall, cpu = time.perf_counter(), time.process_time()
            outputs = self.predictor.predict(sample["image"])
            self.seconds += time.perf_counter() - wall
            self.cpu_seconds += time.process_time() - cpu
            self._accumulate(index, sample, outputs, name)
            store.put(index, self._stored(index, sample, outputs, name))

    def _accumulate(self, index: int, sample: dict[str, Any], outputs: ImageOutputs, name: str) -> None:
        if self.semantic is not None:
            self.semantic.update(outputs.heads["semantic"], sample["semantic"], name)
        if self._needs("anomaly", "open-set"):  # the open-set table reports AuPRC / FPR95 too
            for subset in self._subsets(index):
                self.subsets[subset] = self.subsets.get(subset, 0) + 1
                per_score = self.pixel.setdefault(
                    subset, {s: PixelAnomalyAccumulator(self.settings.pixel_max_bins) for s in self.scores}
                )
                for score, scores in outputs.scores.items():
                    per_score[score].update(scores, sample["anomaly"], name)
        if self.thresholded:
            anomaly = sample["anomaly"]
            for score, scores in outputs.scores.items():
                if score not in self.fixed_thresholds:
                    self.half_pixel[half_of(index, self.count)][score].update(scores, anomaly, name)

    def _stored(self, index: int, sample: dict[str, Any], outputs: ImageOutputs, name: str) -> dict[str, np.ndarray]:
        stored: dict[str, np.ndarray] = {"name": np.array(name)}
        if self._needs("components") or self.thresholded:
            stored.update({f"score.{score}": value for score, value in outputs.scores.items()})
            stored["gt.anomaly"] = sample["anomaly"]
        if self.thresholded:
            stored["gt.semantic"] = sample["semantic"]
            stored["heads.semantic"] = outputs.heads["semantic"]
        if self._needs("panoptic", "goss"):
            stored.update({f"heads.{key}": outputs.heads[key] for key in PANOPTIC_OUTPUTS})
            if "panoptic" in self.tasks:
                stored["gt.instances"] = sample["instances"]
        if index < self.settings.panels and "anomaly" in self.tasks:
            stored["image"] = sample["image"]
            stored.setdefault("gt.anomaly", sample["anomaly"])
            stored.setdefault(f"score.{self.predictor.primary}", outputs.scores[self.predictor.primary])
        return stored

    # -- between the passes --------------------------------------------------------------
    def open_set_thresholds(self) -> dict[str, dict[str, float]]:
        """``[score][split]`` thresholds in the heads' convention (``score > t``)."""
        thresholds = {
            score: {ALL: self.fixed_thresholds[score]} if score in self.fixed_thresholds else {}
            for score in self.scores
        }
        for half, split in enumerate(HALF_NAMES):
            other = 1 - half
            for score in self.scores:
                if score in self.fixed_thresholds:
                    continue
                try:
                    result = self.half_pixel[other][score].result()
                except AnomaskError as error:
                    raise AnomaskError(
                        f"dataset {self.entry.name}: cannot calibrate the {split}'s threshold on the "
                        f"{HALF_NAMES[other]} "
                        f"({error}); pass --thresholds checkpoint or --thresholds NAME=ROOT"
                    ) from error
                thresholds[score][split] = heads_threshold(result.threshold95)
        return thresholds

    # -- pass 2 --------------------------------------------------------------------------
    def second_pass(self, store: ImageStore, results: DatasetResults) -> None:
        metadata = self.predictor.metadata
        primary = self.predictor.primary
        components = (
            {
                subset: {
                    s: ComponentAccumulator(results.pixel[subset][s].best_f1_threshold, self.components)
                    for s in self.scores
                }
                for subset in results.pixel
            }
            if "components" in self.tasks
            else {}
        )
        open_set: dict[str, dict[str, OpenSetAccumulator]] = {}
        if self.thresholded:
            results.thresholds = self.open_set_thresholds()
        if "open-set" in self.tasks:
            open_set = {
                score: {
                    split: OpenSetAccumulator(metadata.num_classes, metric_threshold(t)) for split, t in per.items()
                }
                for score, per in results.thresholds.items()
            }
        methods = (CLOSED_SET, *self.settings.panoptic_methods) if "panoptic" in self.tasks else ()
        panoptic = {method: PanopticAccumulator(metadata.classes) for method in methods}
        goss = GossAccumulator(metadata.classes) if "goss" in self.tasks else None
        bar = tqdm(
            range(self.count),
            desc=f"{self.entry.name}: metrics",
            unit="img",
            disable=not self.settings.progress,
            dynamic_ncols=True,
        )
        for index in bar:
            stored = store.get(index)
            name = str(stored["name"])
            for subset in self._subsets(index):
                for score, accumulator in components.get(subset, {}).items():
                    accumulator.update(stored[f"score.{score}"], stored["gt.anomaly"], name)
            for score, per_split in open_set.items():
                per_split[self._split(index, score)].update(
                    stored["heads.semantic"], stored[f"score.{score}"], stored["gt.semantic"], name
                )
            threshold = results.thresholds.get(primary, {}).get(self._split(index, primary))
            panoptic_maps = self._panoptic(stored, threshold, panoptic, goss, name)
            if "image" in stored:
                panel_method = self.settings.panoptic_methods[0] if self.settings.panoptic_methods else CLOSED_SET
                results.panels.append(
                    Panel(
                        name,
                        stored["image"],
                        stored["gt.anomaly"],
                        stored[f"score.{primary}"],
                        panoptic_maps.get(panel_method),
                    )
                )
        results.components = {subset: {s: a.result() for s, a in per.items()} for subset, per in components.items()}
        results.component_sizes = (
            (self.components.min_predicted_size, self.components.min_gt_size) if components else None
        )
        results.open_set = {
            score: {split: a.result() for split, a in per.items() if a.closed.images} for score, per in open_set.items()
        }
        results.panoptic = {method: a.result() for method, a in panoptic.items()}
        results.goss = goss.result() if goss is not None else None

    def _panoptic(
        self,
        stored: dict[str, np.ndarray],
        threshold: float | None,
        panoptic: dict[str, PanopticAccumulator],
        goss: GossAccumulator | None,
        name: str,
    ) -> dict[str, PanopticLabels]:
        """Open-set panoptic / GOSS maps of one image at the primary score's threshold, as
        (class, instance) pairs: unambiguous also when class 0 is a thing (COCO person)."""
        if not panoptic and goss is None:
            return {}
        heads = {key[len("heads.") :]: value for key, value in stored.items() if key.startswith("heads.")}
        heads["anomaly"] = stored[f"score.{self.predictor.primary}"]
        heads["open_set"] = open_set_semantic(
            torch.from_numpy(heads["semantic"]),
            torch.from_numpy(heads["anomaly"]),
            torch.tensor(threshold, dtype=torch.float32),
        ).numpy()
        metadata = self.predictor.metadata
        maps: dict[str, PanopticLabels] = {}
        for method, accumulator in panoptic.items():
            maps[method] = labels = open_set_panoptic_labels(heads, metadata.thing_ids, method, self.settings.panoptic)
            accumulator.update_labels(
                labels.classes, labels.instances, stored["gt.semantic"], stored["gt.instances"], name
            )
        if goss is not None:
            labels = goss_labels(heads["open_set"], heads["preferred_mask"])
            goss.update_labels(labels.classes, labels.instances, stored["gt.semantic"], name)
        return maps

    def results(self) -> DatasetResults:
        """Everything pass 1 gives; pass 2 fills in the rest."""
        results = DatasetResults(self.entry.name, self.entry.root, self.count, self.tasks)
        for subset, per in self.pixel.items():
            try:
                results.pixel[subset] = {s: a.result() for s, a in per.items()}
            except AnomaskError as error:
                if subset == self.entry.name:
                    raise AnomaskError(f"dataset {self.entry.name}: {error}") from error
                self.notes.append(f"{subset}: not scored ({error})")  # e.g. a group without anomaly pixels
                continue
            results.subsets[subset] = self.subsets[subset]
            results.curves[subset] = {s: a.curves() for s, a in per.items()}
            results.histograms[subset] = {s: a.histogram() for s, a in per.items()}
        results.semantic = self.semantic.result() if self.semantic is not None else None
        results.splits = {
            split: self.count
            if split == ALL
            else sum(HALF_NAMES[half_of(i, self.count)] == split for i in range(self.count))
            for split in self.split_names
        }
        return results


def check_sample(sample: dict[str, Any], name: str, tasks: Sequence[str]) -> None:
    """Every label map the tasks read has the image's size (outputs come at the image size)."""
    if "image" not in sample:
        raise AnomaskError(f"sample{where(name)} has no image")
    size = tuple(np.asarray(sample["image"]).shape[:2])
    needed = {
        "anomaly": ("anomaly", "components", "open-set"),
        "semantic": ("semantic", "open-set", "panoptic", "goss"),
        "instances": ("panoptic",),
    }
    for key, users in needed.items():
        if not any(t in tasks for t in users):
            continue
        if key not in sample:
            raise AnomaskError(
                f"sample{where(name)} lacks its {key} ground truth, which the first sample of the dataset has"
            )
        shape = tuple(np.asarray(sample[key]).shape)
        if shape != size:
            raise AnomaskError(
                f"{key} ground truth{where(name)} is {shape[0]}x{shape[1]} but the image is {size[0]}x{size[1]}"
            )


def calibrate(predictor: Predictor, entry: EvalDataset, settings: EvalSettings) -> dict[str, float]:
    """Thresholds at 95 % TPR of every score on a calibration dataset (heads convention)."""
    count = len(entry) if settings.limit is None else min(len(entry), settings.limit)
    if count == 0:
        raise AnomaskError(f"calibration dataset {entry.name} ({entry.root}) is empty")
    accumulators = {score: PixelAnomalyAccumulator(settings.pixel_max_bins) for score in predictor.scores}
    for index in tqdm(
        range(count), desc=f"{entry.name}: calibration", unit="img", disable=not settings.progress, dynamic_ncols=True
    ):
        sample = entry.dataset[index]
        name = str(sample.get("name") or f"{entry.name}[{index}]")
        if "anomaly" not in sample:
            raise AnomaskError(f"calibration dataset {entry.name}: sample{where(name)} has no anomaly ground truth")
        check_sample(sample, name, ("anomaly",))
        outputs = predictor.predict(sample["image"])
        for score, scores in outputs.scores.items():
            accumulators[score].update(scores, sample["anomaly"], name)
    thresholds = {}
    for score, accumulator in accumulators.items():
        try:
            thresholds[score] = heads_threshold(accumulator.result().threshold95)
        except AnomaskError as error:
            raise AnomaskError(f"calibration dataset {entry.name}: {error}") from error
    return thresholds


@dataclass
class EvalResults:
    model: str
    backend: str
    scores: tuple[str, ...]
    resolution: str
    settings: EvalSettings
    classes: tuple[ClassInfo, ...]
    datasets: list[DatasetResults]
    threshold_source: str
    notes: list[str]
    timing: dict[str, float]
    command: str | None = None
    protocol: str = "anomask"
    """``anomask``, ``official`` or ``anomask+flip`` (``Predictor.protocol``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {
                "path": self.model,
                "backend": self.backend,
                "scores": list(self.scores),
                "primary_score": self.scores[0],
                "classes": [c.name for c in self.classes],
            },
            "settings": {
                "protocol": self.protocol,
                "resolution": self.resolution,
                "thresholds": self.threshold_source,
                "tasks": list(self.settings.tasks),
                "limit": self.settings.limit,
                "panoptic_methods": list(self.settings.panoptic_methods),
                "panoptic_config": vars(self.settings.panoptic),
            },
            "timing": self.timing,
            "notes": self.notes,
            "command": self.command,
            "datasets": {d.name: d.to_dict() for d in self.datasets},
        }


def _entries(datasets: Sequence[str | EvalDataset] | None) -> list[EvalDataset]:
    if not datasets:
        return synthetic_datasets(default_synthetic_root())
    entries: list[EvalDataset] = []
    for item in datasets:
        entries += parse_dataset(item) if isinstance(item, str) else [item]
    names = [e.name for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise AnomaskError(f"datasets named more than once: {', '.join(repeated)}")
    return entries


def _threshold_source(
    settings: EvalSettings, predictor: Predictor, entries: list[EvalDataset]
) -> tuple[dict[str, float], str, list[str]]:
    """Fixed thresholds per score (checkpoint or calibration dataset; scores left out use
    ``halves``), a sentence for the report and notes."""
    if settings.thresholds == HALVES:
        return {}, f"halves: {HALVES_MEANING}", []
    if settings.thresholds == AUTO:
        fixed, sentence = auto_thresholds(predictor.metadata, predictor.scores, entries)
        return fixed, sentence, []
    if settings.thresholds == CHECKPOINT:
        record, conflicts = calibration_conflicts(predictor.metadata, entries)
        notes = []
        if record is None:
            notes.append(
                "--thresholds checkpoint: the model metadata does not record where its thresholds were calibrated"
            )
        elif conflicts:
            notes.append(
                f"--thresholds checkpoint: the thresholds were calibrated on {describe_calibration(record)}, "
                f"evaluated here too ({', '.join(conflicts)}): the open-set numbers there are optimistic"
            )
        return (
            checkpoint_thresholds(predictor.metadata, predictor.scores, predictor.source),
            "checkpoint: the model metadata's calibrated <score>@tpr95 thresholds",
            notes,
        )
    calibration = _entries([settings.thresholds])
    for entry in calibration:
        same = [e for e in entries if same_images(entry, e)]
        if same:
            raise AnomaskError(
                f"--thresholds {settings.thresholds}: the calibration data is one of the evaluated datasets; "
                "thresholds are never taken on the test images themselves"
            )
    thresholds: dict[str, float] = {}
    for entry in calibration:
        if "anomaly" in entry.dataset[0]:
            thresholds = calibrate(predictor, entry, settings)
            return thresholds, f"calibrated at 95 % TPR on {entry.name} ({entry.root})", []
    raise AnomaskError(f"--thresholds {settings.thresholds}: no anomaly ground truth to calibrate on")


def evaluate(
    model: str | os.PathLike,
    datasets: Sequence[str | EvalDataset] | None = None,
    scores: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    settings: EvalSettings = EvalSettings(),
    size: tuple[int, int] | None = None,
    device: str = "cpu",
    command: str | None = None,
    protocol: str = "anomask",
) -> dict[str, Any]:
    """Evaluate ``model`` (checkpoint or exported file) on ``datasets`` (specs such as
    ``"fishyscapes-static=/data/fs"`` or ``EvalDataset`` objects; default: the synthetic
    default) with ``scores`` (default: every score the model has). Writes ``report.md``,
    ``metrics.json`` and ``plots/`` into ``out_dir`` when given; returns the metrics dict
    (the content of ``metrics.json``). ``protocol``: ``anomask`` (the fast deployment path) or
    ``official`` (each method's official inference, ``anomask.models.heads.official``)."""
    unknown = sorted(set(settings.tasks) - set(TASKS))
    if unknown:
        raise AnomaskError(f"unknown tasks {', '.join(unknown)}; valid: {', '.join(TASKS)}")
    bad_methods = sorted(set(settings.panoptic_methods) - set(OPEN_SET_METHODS))
    if bad_methods:
        raise AnomaskError(
            f"unknown open-set panoptic methods {', '.join(bad_methods)}; valid: {', '.join(OPEN_SET_METHODS)}"
        )
    if settings.limit is not None and settings.limit < 1:
        raise AnomaskError(f"limit must be at least 1, got {settings.limit}")
    predictor = open_predictor(model, scores, size, device, protocol)
    entries = _entries(datasets)
    fixed, source, notes = _threshold_source(settings, predictor, entries)
    store_parent = settings.tmp_dir or out_dir
    started = time.perf_counter()
    results: list[DatasetResults] = []
    notes = list(predictor.notes) + notes
    seconds = {"network_and_heads": 0.0, "network_and_heads_cpu": 0.0, "pass1": 0.0, "pass2": 0.0}
    images = 0
    for entry in entries:
        run = DatasetEvaluation(entry, predictor, settings, fixed)
        with ImageStore(store_parent) as store:
            start = time.perf_counter()
            run.first_pass(store)
            seconds["pass1"] += time.perf_counter() - start
            dataset_results = run.results()
            start = time.perf_counter()
            run.second_pass(store, dataset_results)
            seconds["pass2"] += time.perf_counter() - start
            dataset_results.store_bytes = store.bytes
        seconds["network_and_heads"] += run.seconds
        seconds["network_and_heads_cpu"] += run.cpu_seconds
        notes += run.notes
        images += run.count
        results.append(dataset_results)
    timing = {
        "images": images,
        "network_and_heads_ms_per_image": 1000 * seconds["network_and_heads"] / images,
        "network_and_heads_cpu_ms_per_image": 1000 * seconds["network_and_heads_cpu"] / images,
        "pass1_ms_per_image": 1000 * seconds["pass1"] / images,
        "pass2_ms_per_image": 1000 * seconds["pass2"] / images,
        "total_s": time.perf_counter() - started,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count() or 0,
        "load_average_1min_at_end": os.getloadavg()[0],
        "store_mb_max": max(r.store_bytes for r in results) / 1e6,
    }
    evaluation = EvalResults(
        model=str(model),
        backend=predictor.backend,
        scores=predictor.scores,
        resolution=predictor.resolution,
        settings=settings,
        classes=predictor.metadata.classes,
        datasets=results,
        threshold_source=source,
        notes=notes,
        timing=timing,
        command=command,
        protocol=predictor.protocol,
    )
    if out_dir is not None:
        from anomask.evaluation.eval_report import write_report

        write_report(evaluation, out_dir)
    return evaluation.to_dict()
