"""Dataset statistics: class frequencies, instances and anomaly sizes (``anomask data stats``).

Works on a synthetic default folder or any folder with the same layout: Cityscapes
``train``/``val`` splits (class list from ``classes.json`` or the official 19) and the
anomaly split when present.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import ClassInfo
from anomask.training.data.cityscapes import CityscapesDataset
from anomask.training.data.synthetic.reader import SyntheticAnomalyDataset
from anomask.training.data.synthetic.writer import ANOMALY_TEST, ANOMALY_VAL


@dataclass
class SplitStats:
    name: str
    frames: int = 0
    size: tuple[int, int] = (0, 0)
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    """Pixel count per semantic value (0..K-1, 254 unknown, 255 void)."""
    instances: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    """Instance count per semantic value."""
    anomaly_sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Visible pixels of each anomaly instance, per group (and per object name)."""
    anomaly_pixels: int = 0
    labelled_pixels: int = 0


def _accumulate(stats: SplitStats, sample: dict) -> None:
    semantic = sample["semantic"]
    stats.pixels += np.bincount(semantic.ravel(), minlength=256)
    if "instances" in sample:
        ids, first = np.unique(sample["instances"].ravel(), return_index=True)
        classes = semantic.ravel()[first[ids > 0]]
        stats.instances += np.bincount(classes, minlength=256)


def split_stats(
    dataset: CityscapesDataset | SyntheticAnomalyDataset, name: str, limit: int | None = None
) -> SplitStats:
    stats = SplitStats(name)
    for index in range(min(len(dataset), limit or len(dataset))):
        sample = dataset[index]
        stats.frames += 1
        stats.size = sample["image"].shape[:2]
        if "semantic" in sample:
            _accumulate(stats, sample)
        anomaly = sample.get("anomaly")
        if anomaly is None:
            continue
        stats.anomaly_pixels += int((anomaly == 1).sum())
        stats.labelled_pixels += int((anomaly != 255).sum())
        if "instances" in sample and isinstance(dataset, SyntheticAnomalyDataset):
            names = {o["instance"]: o["name"] for o in dataset.objects(index)}
            ids, counts = np.unique(sample["instances"][anomaly == 1], return_counts=True)
            group = dataset.group(index) or "all"
            for instance, count in zip(ids, counts):
                if instance > 0:
                    stats.anomaly_sizes[group].append(int(count))
                    stats.anomaly_sizes[f"{group}/{names.get(int(instance), '?')}"].append(int(count))
    return stats


def collect(root: Path, limit: int | None = None) -> tuple[tuple[ClassInfo, ...], list[SplitStats]]:
    root = Path(root)
    if not root.is_dir():
        raise AnomaskError(f"{root}: dataset folder not found")
    splits, classes = [], None
    for split in ("train", "val"):
        if (root / "leftImg8bit" / split).is_dir():
            dataset = CityscapesDataset(root, split)
            classes = dataset.classes
            splits.append(split_stats(dataset, split, limit))
    for split in (ANOMALY_TEST, ANOMALY_VAL):
        if (root / split).is_dir():
            dataset = SyntheticAnomalyDataset(root, split)
            classes = classes or dataset.classes
            splits.append(split_stats(dataset, split, limit))
    if classes is None:
        raise AnomaskError(f"{root}: no leftImg8bit/train|val, anomaly/ or anomaly_val/ split to read")
    return classes, splits


def _size_row(label: str, sizes: list[int]) -> str:
    values = np.asarray(sizes)
    return (
        f"  {label:<22} {values.size:>5} {values.min():>7} {int(np.median(values)):>7} {int(values.mean()):>7} "
        f"{values.max():>7}"
    )


def format_stats(classes: tuple[ClassInfo, ...], splits: list[SplitStats]) -> str:
    lines = []
    names = [c.name for c in classes] + ["unknown (254)", "void (255)"]
    values = list(range(len(classes))) + [254, 255]
    header = f"{'class':<16}" + "".join(
        f" {s.name + ' px%':>12} {s.name + ' inst':>12}" for s in splits if s.pixels.sum()
    )
    lines.append(", ".join(f"{s.name}: {s.frames} frames of {s.size[0]}x{s.size[1]} (HxW)" for s in splits))
    lines.append(header)
    for name, value in zip(names, values):
        cells = ""
        for s in splits:
            total = s.pixels.sum()
            if total:
                cells += f" {100 * s.pixels[value] / total:>12.2f} {s.instances[value]:>12d}"
        lines.append(f"{name:<16}{cells}")
    for s in splits:
        if not s.anomaly_sizes:
            continue
        share = 100 * s.anomaly_pixels / max(s.labelled_pixels, 1)
        lines.append(f"{s.name}: anomaly pixels {share:.2f} % of labelled pixels; sizes of anomaly instances (pixels):")
        lines.append(f"  {'group/object':<22} {'count':>5} {'min':>7} {'median':>7} {'mean':>7} {'max':>7}")
        for key in sorted(s.anomaly_sizes, key=lambda k: ("/" in k, k)):
            lines.append(_size_row(key, s.anomaly_sizes[key]))
    return "\n".join(lines)
