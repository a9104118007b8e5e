"""Surface textures from the scikit-image photos (gravel, brick, grass), mip-mapped.

A texture is the photo's luminance divided by its mean (so it modulates a base colour)
at three blur levels; :meth:`Texture.sample` picks the level from the pixel footprint,
so distant road does not shimmer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from anomask.training.data.synthetic.objects import read_photo


@dataclass(frozen=True)
class Texture:
    levels: np.ndarray
    """float32 ``[L, S, S]``: mean-1 maps, increasingly blurred."""

    def sample(self, u: np.ndarray, v: np.ndarray, footprint: np.ndarray, contrast: float = 1.0) -> np.ndarray:
        """Values at texel coordinates ``(u, v)`` (wrapped); ``footprint``: texels per pixel
        (level 0 below 4, level 1 below 16, else level 2)."""
        size = self.levels.shape[1]
        ui = u.astype(np.int64) % size
        vi = v.astype(np.int64) % size
        level = np.searchsorted(np.array([4.0, 16.0], dtype=np.float32), footprint.astype(np.float32), side="right")
        return 1.0 + contrast * (self.levels[level, vi, ui] - 1.0)

    def patch(self, height: int, width: int, offset: np.ndarray, step: int, contrast: float) -> np.ndarray:
        """A ``[height, width]`` window of level 0 (every ``step``-th texel, wrapped)."""
        size = self.levels.shape[1]
        rows = (offset[0] + step * np.arange(height)) % size
        cols = (offset[1] + step * np.arange(width)) % size
        return 1.0 + contrast * (self.levels[0][np.ix_(rows, cols)] - 1.0)


@cache
def texture(photo: str) -> Texture:
    grey = cv2.cvtColor(read_photo(photo), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey /= grey.mean()
    levels = [grey] + [_wrapped_blur(grey, sigma) for sigma in (2.0, 6.0)]
    return Texture(np.stack(levels))


def _wrapped_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur treating the texture as periodic (it is sampled wrapped)."""
    pad = int(3 * sigma) + 1
    return cv2.GaussianBlur(np.pad(image, pad, mode="wrap"), (0, 0), sigma)[pad:-pad, pad:-pad]


def gravel() -> Texture:
    return texture("gravel.png")


def brick() -> Texture:
    return texture("brick.png")


def grass() -> Texture:
    return texture("grass.png")
