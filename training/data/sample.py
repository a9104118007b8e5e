"""The sample contract's types, per-sample random generators and a transformed dataset.

A sample is a dict (preamble contract): ``image`` uint8 ``[H, W, 3]`` RGB, ``semantic``
uint8 ``[H, W]``, optional ``instances`` int32 and ``anomaly`` uint8 maps, ``name``.
Transforms take the sample and an explicit ``numpy.random.Generator``: the generator of
sample ``index`` in ``epoch`` depends only on ``(seed, epoch, index)``, so data order,
pasting and augmentation are reproducible and a resumed run sees the same samples
whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from anomask.models.metadata import ClassInfo

Sample = dict[str, Any]
Transform = Callable[[Sample, np.random.Generator], Sample]


class Dataset(Protocol):
    classes: tuple[ClassInfo, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample in one epoch (independent streams via SeedSequence)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index])))


class TransformedDataset:
    """``dataset`` with ``transforms`` applied in order, each sample with its own
    generator :func:`sample_rng` ``(seed, epoch, index)``; call :meth:`set_epoch` per epoch."""

    def __init__(self, dataset: Dataset, transforms: Sequence[Transform], seed: int = 0) -> None:
        self.dataset = dataset
        self.transforms = tuple(transforms)
        self.seed = seed
        self.epoch = 0

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return self.dataset.classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        rng = sample_rng(self.seed, self.epoch, index)
        sample = self.dataset[index]
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample
