"""From a stage's :class:`DataConfig` to what the trainer consumes: the training dataset
(pasting, then Mask2Former augmentation, each sample with its own seeded generator), the
validation split, the anomaly split that validation and threshold calibration read (with a
record of which split it is), and a loader that yields each iteration's samples.
The datasets, pools and transforms themselves are the data package's
(``anomask.training.data``); this module only assembles them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.utils.data

from anomask.errors import AnomaskError
from anomask.models.metadata import ClassInfo
from anomask.training import distributed
from anomask.training.config import DataConfig, StageConfig
from anomask.training.data import (
    AdeNegatives,
    AnomalyMix,
    Augment,
    AugmentConfig,
    BoxNegatives,
    CityscapesDataset,
    CocoInstanceNegatives,
    CocoPanopticDataset,
    InstancePaste,
    NegativePool,
    NoisyNegativePaste,
    StreetHazardsDataset,
)
from anomask.training.data.sample import Dataset, Sample, Transform, TransformedDataset
from anomask.training.data.synthetic import (
    ANOMALY_TEST,
    SyntheticAnomalyDataset,
    default_root,
    ensure_generated,
    seen_negatives,
)
from anomask.training.sampler import BatchItem, StreamSampler

SYNTHETIC = "synthetic"
NEGATIVE_FORMS = "synthetic, ade:IMAGE_DIR:ANNOTATION_DIR, coco:INSTANCES_JSON:IMAGE_DIR, boxes:IMAGE_DIR:XML_DIR"


@dataclass
class TrainData:
    classes: tuple[ClassInfo, ...]
    train: TransformedDataset
    val: Dataset | None
    anomaly: Dataset | None
    anomaly_source: dict[str, Any] | None = None
    """Which split ``anomaly`` is (``AnomalySplit.record``): goes into the metadata with the
    thresholds calibrated on it."""


@dataclass(frozen=True)
class AnomalySplit:
    """The split anomaly validation and threshold calibration read, and where it is."""

    dataset: Dataset
    spec: str
    """``data.dataset`` as configured (``synthetic``, a folder, ``coco:ROOT`` ...)."""
    root: Path
    split: str
    test_split: bool
    """True when no held-out anomaly split exists and this is the dataset's test split."""

    def record(self) -> dict[str, Any]:
        return {
            "dataset": self.spec,
            "root": str(self.root.resolve()),
            "split": self.split,
            "test_split": self.test_split,
        }


class _KeyedSamples(torch.utils.data.Dataset):
    """``dataset[(epoch, index)]``: the transformed sample of ``index`` in ``epoch``."""

    def __init__(self, source: TransformedDataset) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        epoch, index = key
        self.source.set_epoch(epoch)
        return self.source[index]


class _IterationKeys(torch.utils.data.Sampler):
    def __init__(self, sampler: StreamSampler, start: int, stop: int) -> None:
        self.sampler, self.start, self.stop = sampler, start, stop

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for iteration in range(self.start, self.stop):
            yield [(item.epoch, item.index) for item in self.sampler.local_batch(iteration)]


def _as_list(samples: list[Sample]) -> list[Sample]:
    return samples


class BatchLoader:
    """Iterations ``start .. stop-1`` as ``(items, samples)``; ``num_workers`` > 0 loads
    ahead in worker processes (the result is the same: samples depend only on their keys)."""

    def __init__(
        self, source: TransformedDataset, sampler: StreamSampler, start: int, stop: int, num_workers: int = 0
    ) -> None:
        self.sampler = sampler
        self.start, self.stop = start, stop
        self.loader = torch.utils.data.DataLoader(
            _KeyedSamples(source),
            batch_sampler=_IterationKeys(sampler, start, stop),
            collate_fn=_as_list,
            num_workers=num_workers,
            persistent_workers=False,
        )

    def __iter__(self) -> Iterator[tuple[list[BatchItem], list[Sample]]]:
        for iteration, samples in zip(range(self.start, self.stop), self.loader):
            yield self.sampler.local_batch(iteration), samples


def resolve_dataset(name: str, dist: distributed.DistInfo) -> str:
    """``synthetic`` -> its folder, generated once (``anomask data synth`` defaults) on
    first use by rank 0 (an older one without the anomaly validation split gets it added);
    anything else is returned unchanged."""
    if name != SYNTHETIC:
        return name
    root = default_root()
    if dist.is_main:
        ensure_generated(root)
    distributed.barrier()
    return str(root)


def _kind_and_paths(spec: str) -> tuple[str, list[Path]]:
    """``"coco:/a:/b"`` -> ``("coco", [/a, /b])``; a plain path -> ``("", [path])``."""
    kind, _, rest = spec.partition(":")
    if not rest:
        return "", [Path(spec)]
    return kind, [Path(p) for p in rest.split(":")]


def open_split(spec: str, split: str, config: DataConfig, evaluation: bool = False) -> Dataset:
    """A split of a dataset: a Cityscapes-layout folder (the synthetic default is one),
    ``coco:ROOT`` (``ROOT/annotations/panoptic_<split>2017.json``, ``ROOT/<split>2017``) or
    ``streethazards:ROOT``."""
    kind, paths = _kind_and_paths(spec)
    root = paths[0]
    if kind == "coco":
        return CocoPanopticDataset(
            root / "annotations" / f"panoptic_{split}2017.json",
            root / f"{split}2017",
            open_set=config.open_set,
            mode="eval" if evaluation else "train",
        )
    if kind == "streethazards":
        return StreetHazardsDataset(root, split)
    if kind:
        raise AnomaskError(
            f"dataset {spec!r}: unknown kind {kind!r}; use a Cityscapes-layout folder, coco:ROOT or streethazards:ROOT"
        )
    if not root.is_dir():
        raise AnomaskError(
            f"dataset {spec!r}: folder not found (use 'synthetic', a Cityscapes-layout folder, coco:ROOT or "
            f"streethazards:ROOT)"
        )
    return CityscapesDataset(root, split)


def open_anomaly_split(spec: str, config: DataConfig) -> AnomalySplit | None:
    """The split with anomaly ground truth that validation and calibration read:
    ``ROOT/<anomaly_split>`` (Fishyscapes layout; the synthetic default's ``anomaly_val``
    holds seen objects only), else -- for datasets without a held-out anomaly split -- the
    test split, recorded as such: ``ROOT/anomaly``, StreetHazards' test split, COCO's
    open-set val."""
    if config.anomaly_split is None:
        return None
    kind, paths = _kind_and_paths(spec)
    root = paths[0]
    if kind == "coco":
        if not config.open_set:
            return None
        dataset = open_split(spec, config.val_split, config, evaluation=True)
        return AnomalySplit(dataset, config.dataset, root, f"{config.val_split}2017", True)
    if kind == "streethazards":
        return AnomalySplit(StreetHazardsDataset(root, "test"), config.dataset, root, "test", True)
    for split in dict.fromkeys((config.anomaly_split, ANOMALY_TEST)):
        if (root / split).is_dir():
            return AnomalySplit(
                SyntheticAnomalyDataset(root, split), config.dataset, root, split, split == ANOMALY_TEST
            )
    return None


def open_negatives(spec: str | None, needed_by: str) -> NegativePool:
    if spec is None:
        raise AnomaskError(
            f"{needed_by} pastes negatives but no negative pool is set: pass --negatives ({NEGATIVE_FORMS})"
        )
    if spec == SYNTHETIC:
        return seen_negatives()
    kind, paths = _kind_and_paths(spec)
    makers = {"ade": AdeNegatives, "coco": CocoInstanceNegatives, "boxes": BoxNegatives}
    if kind not in makers or len(paths) != 2:
        raise AnomaskError(f"--negatives {spec!r}: expected one of {NEGATIVE_FORMS}")
    return makers[kind](*paths)


def paste_transform(config: DataConfig, pool: NegativePool, num_classes: int) -> Transform:
    if config.paste == "eam":
        return InstancePaste.eam(pool, count=config.paste_count)
    if config.paste == "uno":
        return InstancePaste.uno(pool, negative_class=num_classes, count=config.paste_count)
    if config.paste == "anomaly_mix":
        return AnomalyMix(pool, probability=config.paste_probability)
    return NoisyNegativePaste(pool, share=config.paste_share, probability=config.paste_probability)


def build_train_data(stage: StageConfig, dist: distributed.DistInfo) -> TrainData:
    """Datasets of one stage: training (paste, then augment), validation and anomaly."""
    config = stage.data
    spec = resolve_dataset(config.dataset, dist)
    train = open_split(spec, config.train_split, config)
    transforms: list[Transform] = []
    if config.paste != "none":
        pool = open_negatives(config.negatives, f"stage {stage.name!r} (data.paste={config.paste})")
        transforms.append(paste_transform(config, pool, len(train.classes)))
    transforms.append(Augment(AugmentConfig(crop_size=config.crop, scales=config.scales)))
    val = open_split(spec, config.val_split, config, evaluation=True) if config.val_split else None
    anomaly = open_anomaly_split(spec, config)
    if anomaly is not None and anomaly.test_split and dist.is_main:
        print(
            f"note: {config.dataset!r} has no anomaly validation split ({config.anomaly_split!r}); anomaly validation, "
            f"the best checkpoint and the stored thresholds use its test split {anomaly.split!r} (recorded in the "
            f"metadata)"
        )
    return TrainData(
        train.classes,
        TransformedDataset(train, transforms, seed=stage.seed),
        val,
        anomaly.dataset if anomaly else None,
        anomaly.record() if anomaly else None,
    )
