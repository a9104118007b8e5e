"""Per-image arrays kept on disk between the two passes of an evaluation.

Metrics that need a dataset-level threshold first (SMIYC components: the best pixel-F1
threshold; open-IoU, open-set panoptic, GOSS: the 95 % TPR threshold of another half) read
the first pass's outputs back from here, so memory holds one image at a time however large
the dataset. One uncompressed ``.npz`` per image in a temporary folder (float32 score maps
stay bit-exact); the folder is removed when the store is closed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class ImageStore:
    def __init__(self, parent: str | Path | None = None) -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self._folder = tempfile.TemporaryDirectory(prefix=".anomask-eval-", dir=parent)
        self.path = Path(self._folder.name)
        self.bytes = 0

    def put(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        path = self.path / f"{index:08d}.npz"
        np.savez(path, **arrays)
        self.bytes += path.stat().st_size

    def get(self, index: int) -> dict[str, np.ndarray]:
        with np.load(self.path / f"{index:08d}.npz") as data:
            return {name: data[name] for name in data.files}

    def close(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> ImageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
