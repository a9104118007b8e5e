"""Training augmentation as in Mask2Former's semantic mapper, on image and every label map.

Order and defaults follow Mask2Former's Cityscapes setting: resize by a scale drawn from
0.5, 0.6, ..., 2.0 (``ResizeShortestEdge`` with ``choice`` sampling of 512..2048 for a
1024-px short side), random crop of 512x1024 (``single_category_max_area`` 1.0 there,
i.e. an unconstrained crop), the SSD colour jitter (brightness +-32, contrast and
saturation x0.5..1.5, hue +-18, each with probability 0.5) and a horizontal flip with
probability 0.5. Label maps use nearest-neighbour resizing; regions padded to the crop
size get image value 128 and label ``255`` (semantic, anomaly) or ``0`` (instances).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.training.data.sample import Sample

LABEL_PAD = {"semantic": 255, "instances": 0, "anomaly": 255}
IMAGE_PAD = 128
MASK2FORMER_SCALES = tuple(x / 10 for x in range(5, 21))


@dataclass(frozen=True)
class AugmentConfig:
    crop_size: tuple[int, int] | None = (512, 1024)
    """``(height, width)`` of the output; ``None`` keeps the resized size."""
    scales: tuple[float, ...] = MASK2FORMER_SCALES
    """Resize factors, one drawn uniformly per sample."""
    flip: bool = True
    color: bool = True


def resize_nearest(label: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour by pixel centres (matches the bilinear image resize's geometry)."""
    rows = np.minimum(((np.arange(height) + 0.5) * label.shape[0] / height).astype(np.int64), label.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * label.shape[1] / width).astype(np.int64), label.shape[1] - 1)
    return label[rows[:, None], cols[None, :]]


def color_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Detectron2's ColorAugSSDTransform: brightness, contrast before or after the HSV
    saturation and hue changes, each with probability 0.5."""
    out = image.astype(np.float32)
    if rng.random() < 0.5:
        out += rng.uniform(-32, 32)
    contrast_first = rng.random() < 0.5
    contrast = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    if contrast_first and contrast is not None:
        out *= contrast
    saturation = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    hue = int(rng.integers(-18, 19)) if rng.random() < 0.5 else None
    if saturation is not None or hue is not None:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        if saturation is not None:
            hsv[..., 1] *= saturation
        if hue is not None:
            hsv[..., 0] = (hsv[..., 0] + hue) % 180
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if not contrast_first and contrast is not None:
        out *= contrast
    return np.clip(out, 0, 255).astype(np.uint8)


class Augment:
    """``augment(sample, rng) -> sample``; the input sample is not modified."""

    def __init__(self, config: AugmentConfig = AugmentConfig()) -> None:
        if not config.scales or min(config.scales) <= 0:
            raise AnomaskError(f"augmentation scales must be positive, got {config.scales}")
        self.config = config

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        labels = [key for key in LABEL_PAD if key in sample]
        image = sample["image"]
        scale = self.config.scales[int(rng.integers(len(self.config.scales)))]
        height, width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
        out = dict(sample)
        out["image"] = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        for key in labels:
            out[key] = resize_nearest(sample[key], height, width)
        if self.config.crop_size is not None:
            self._crop(out, labels, rng)
        if self.config.color:
            out["image"] = color_jitter(out["image"], rng)
        if self.config.flip and rng.random() < 0.5:
            for key in ["image", *labels]:
                out[key] = out[key][:, ::-1]
        for key in ["image", *labels]:
            out[key] = np.ascontiguousarray(out[key])
        return out

    def _crop(self, out: Sample, labels: list[str], rng: np.random.Generator) -> None:
        crop_h, crop_w = self.config.crop_size
        height, width = out["image"].shape[:2]
        top = int(rng.integers(0, max(0, height - crop_h) + 1))
        left = int(rng.integers(0, max(0, width - crop_w) + 1))
        window = slice(top, top + crop_h), slice(left, left + crop_w)
        for key, pad in [("image", IMAGE_PAD), *((k, LABEL_PAD[k]) for k in labels)]:
            cropped = out[key][window]
            padded = np.full((crop_h, crop_w, *cropped.shape[2:]), pad, dtype=cropped.dtype)
            padded[: cropped.shape[0], : cropped.shape[1]] = cropped
            out[key] = padded
