"""Data order as a pure function of (seed, iteration): nothing to save but the iteration.

The sample stream is the concatenation of per-epoch permutations of the dataset, each
drawn from a generator seeded with (seed, epoch). Iteration ``t`` with global batch ``B``
takes stream positions ``[t*B, (t+1)*B)``; process ``r`` of ``W`` takes every W-th of them
starting at ``r``. Augmentation and pasting draw from the data package's per-sample
generator ``(seed, epoch, index)``; each stream position also has its own seed for the
loss's point sampling. So one process with batch B and W processes with B/W each see
exactly the same samples, augmented the same, with the same loss points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomask.errors import AnomaskError
from anomask.training.seeding import mix_seed


@dataclass(frozen=True)
class BatchItem:
    index: int
    """Dataset index."""
    epoch: int
    """Pass over the dataset this item belongs to (the data transforms' rng uses it)."""
    seed: int
    """Seed of this (iteration, position): augmentation, pasting and loss points."""


class StreamSampler:
    def __init__(self, dataset_size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if dataset_size <= 0:
            raise AnomaskError("the training dataset is empty")
        if batch_size < 1 or batch_size % world_size:
            raise AnomaskError(
                f"solver.batch_size {batch_size} must be a positive multiple of the {world_size} processes "
                "(it is the global batch, split evenly)"
            )
        self.size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._cache: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, np.random.default_rng(mix_seed(self.seed, epoch)).permutation(self.size))
        return self._cache[1]

    def global_batch(self, iteration: int) -> list[BatchItem]:
        start = iteration * self.batch_size
        items = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.size)
            items.append(BatchItem(int(self._permutation(epoch)[offset]), epoch, mix_seed(self.seed, 1, position)))
        return items

    def local_batch(self, iteration: int) -> list[BatchItem]:
        return self.global_batch(iteration)[self.rank :: self.world_size]
