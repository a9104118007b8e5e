"""The datasets ``anomask eval`` runs on: ``NAME=ROOT[,KEY=VALUE...]`` specs, the synthetic
default's two splits, and which tasks each dataset can score.

* ``NAME=ROOT`` opens ``readers.open_benchmark(NAME, ROOT, **options)``, e.g.
  ``fishyscapes-lostandfound=/data/fs_laf`` or ``lostandfound=/data/laf,split=test``.
* ``synthetic`` / ``synthetic=ROOT``: the synthetic default (``anomask data synth``): its
  Cityscapes-format ``val`` split (closed-set mIoU) and its anomaly test split (anomaly,
  components, open-set semantic, open-set panoptic, GOSS; seen / unseen groups). Without
  ROOT: the folder ``anomask train`` uses (``$ANOMASK_SYNTHETIC`` or the user cache),
  generated there once if missing.

Each dataset knows its root and split, so that threshold sources can tell whether their
images are among the evaluated ones (``same_images``, ``holds_calibration``).

Tasks follow from what a dataset's samples carry (``dataset_tasks``): anomaly ground truth
-> pixel and component metrics; known-class semantic ground truth (a class list) -> mIoU;
both -> open-set semantic and GOSS; plus instances -> open-set panoptic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.components import ANOMALY_TRACK, OBSTACLE_TRACK, ComponentSettings
from anomask.evaluation.readers import BENCHMARKS, open_benchmark
from anomask.models.metadata import ModelMetadata

DEFAULT_SPLITS = {
    "lostandfound": "test",
    "streethazards": "test",
    "coco-open-panoptic": "val2017",
    "cityscapes": "val",
    "synthetic-anomaly": "anomaly",
}
"""The readers' default ``split`` (a test checks them against the reader signatures)."""
TASKS = ("anomaly", "components", "semantic", "open-set", "panoptic", "goss")
SYNTHETIC = "synthetic"
OBSTACLE_BENCHMARKS = ("smiyc-roadobstacle21", "lostandfound")
"""Scored with the SMIYC obstacle-track component sizes (as the SMIYC code does)."""


@dataclass(frozen=True)
class EvalDataset:
    """One dataset to evaluate, under the name its table columns carry."""

    name: str
    dataset: Any
    root: str = ""
    split: str = ""
    """The split of ``root`` it reads ("" when ``root`` is the images' folder itself)."""
    components: ComponentSettings = ANOMALY_TRACK
    scale_components: bool = False
    """Scale ``components`` to the images' area (``ComponentSettings.scaled``)."""

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def group(self) -> Callable[[int], str | None] | None:
        """``group(index)`` (seen / unseen anomalies) when the dataset tells it."""
        return getattr(self.dataset, "group", None)


def _options(parts: list[str], spec: str) -> dict[str, str]:
    options = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise AnomaskError(f"dataset {spec!r}: option {part!r} is not KEY=VALUE")
        options[key] = value
    return options


def synthetic_datasets(root: str | Path) -> list[EvalDataset]:
    """The synthetic default's val split (mIoU) and anomaly split (everything else)."""
    root = Path(root)
    return [
        EvalDataset("synthetic-val", open_benchmark("cityscapes", root, split="val"), str(root), "val"),
        EvalDataset(
            "synthetic-anomaly", open_benchmark("synthetic-anomaly", root), str(root), "anomaly", scale_components=True
        ),
    ]


def default_synthetic_root() -> Path:
    """The synthetic default ``anomask train`` uses, generated with the default settings if
    it is not there yet (``ensure_generated``)."""
    from anomask.training.data.synthetic import default_root, ensure_generated

    root = default_root()
    ensure_generated(root)
    return root


def parse_dataset(spec: str) -> list[EvalDataset]:
    """``NAME=ROOT[,KEY=VALUE...]`` or ``synthetic[=ROOT]`` -> the datasets it names."""
    name, sep, rest = spec.partition("=")
    if name == SYNTHETIC:
        return synthetic_datasets(rest if sep else default_synthetic_root())
    if not sep or not rest:
        raise AnomaskError(
            f"dataset {spec!r}: expected NAME=ROOT (NAME one of {', '.join(BENCHMARKS)}, or synthetic[=ROOT])"
        )
    root, *parts = rest.split(",")
    options = _options(parts, spec)
    dataset = open_benchmark(name, root, **options)
    track = OBSTACLE_TRACK if name in OBSTACLE_BENCHMARKS else ANOMALY_TRACK
    label = name if not options else f"{name}[{','.join(f'{k}={v}' for k, v in options.items())}]"
    split = options.get("split", DEFAULT_SPLITS.get(name, ""))
    return [EvalDataset(label, dataset, root, split, components=track, scale_components=name == "synthetic-anomaly")]


def _resolved(root: str | Path) -> Path:
    return Path(root).expanduser().resolve()


def same_images(a: EvalDataset, b: EvalDataset) -> bool:
    """Whether two datasets read the same images: same reader, root and split."""
    return (
        bool(a.root and b.root)
        and type(a.dataset) is type(b.dataset)
        and a.split == b.split
        and _resolved(a.root) == _resolved(b.root)
    )


def holds_calibration(entry: EvalDataset, calibration: Mapping[str, Any]) -> bool:
    """Whether ``entry`` reads the images a checkpoint's thresholds were calibrated on
    (``metadata.extra["calibration"]``: ``root`` and ``split`` of ``anomask train``'s anomaly
    split): the same root and split, or a root inside ``root/split`` (a Fishyscapes-layout
    reader pointed at that folder)."""
    if not entry.root:
        return False
    root, split = _resolved(calibration["root"]), str(calibration["split"])
    mine = _resolved(entry.root)
    return (mine == root and entry.split == split) or mine.is_relative_to(root / split)


def check_classes(entry: EvalDataset, metadata: ModelMetadata, source: str) -> None:
    """A dataset with a class list must list the model's classes, in the model's order."""
    classes = tuple(getattr(entry.dataset, "classes", ()))
    if not classes:
        return
    theirs = [c.name for c in classes]
    if theirs != metadata.class_names:
        raise AnomaskError(
            f"dataset {entry.name} ({entry.root}) has the classes {theirs}, the model {source} has "
            f"{metadata.class_names}: class ids would not match"
        )


def dataset_tasks(entry: EvalDataset, sample: Mapping[str, Any], has_panoptic_heads: bool) -> tuple[str, ...]:
    """The tasks ``entry``'s samples (``sample`` is its first) can be scored on."""
    anomaly = "anomaly" in sample
    semantic = "semantic" in sample and bool(getattr(entry.dataset, "classes", ()))
    tasks = []
    if anomaly:
        tasks += ["anomaly", "components"]
    if semantic:
        tasks.append("semantic")
    if anomaly and semantic:
        tasks.append("open-set")
        if has_panoptic_heads:
            tasks.append("goss")
            if "instances" in sample:
                tasks.append("panoptic")
    return tuple(t for t in TASKS if t in tasks)
