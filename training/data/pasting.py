"""Negative pasting: dataset transforms that paste outlier objects into inlier samples.

Every transform is called as ``transform(sample, rng)`` with an explicit
``numpy.random.Generator`` and returns a new sample (the input is not modified). Pasted
pixels always get ``anomaly`` = 1 (the map is created with zeros when absent; the
recipes that do not need it ignore it) and, when the sample has ``instances``, a new
instance id per pasted object; the recipe-specific part is the semantic label:

| transform | semantic label of pasted pixels | paper |
| --- | --- | --- |
| :class:`AnomalyMix` | 255 void (the outlier mask carries them) | Mask2Anomaly (Rai et al., 2024), §4.3, §7.3 |
| :meth:`InstancePaste.eam` | 255 void | EAM (Grcić et al., 2023), §3.4 |
| :meth:`InstancePaste.uno` | K, the negative class | UNO (Delić et al., 2024), §4, §6.1 |
| :class:`NoisyNegativePaste` | 255 (outlier head only) | noisy negatives (Bevandić et al., 2022), §3.2-3.3, eq. 1 |

Pixel sizes of the official code are for full-resolution Cityscapes (2048 px wide), where
pasting happens before resizing; we scale them by ``image width / reference_width`` so
a 512-px wide image gets a quarter of them (UNO's 96-500 px max side becomes 24-125 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, ClassInfo
from anomask.training.data.negatives import BoxNegatives, Negative, NegativePool
from anomask.training.data.sample import Sample

REFERENCE_WIDTH = 2048
"""Width of the images the papers' pixel sizes refer to (Cityscapes)."""


def resize_negative(negative: Negative, height: int, width: int) -> Negative:
    height, width = max(1, int(height)), max(1, int(width))
    interpolation = cv2.INTER_AREA if height < negative.mask.shape[0] else cv2.INTER_LINEAR
    image = cv2.resize(negative.image, (width, height), interpolation=interpolation)
    mask = cv2.resize(negative.mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    if not mask.any():  # a thin object shrunk away: keep its centre pixel
        mask[height // 2, width // 2] = True
    return Negative(image, mask, negative.name)


def scale_to_max_side(negative: Negative, max_side: int) -> Negative:
    height, width = negative.mask.shape
    factor = max_side / max(height, width)
    return resize_negative(negative, round(height * factor), round(width * factor))


def fit_inside(negative: Negative, height: int, width: int) -> Negative:
    """Shrink (keeping the aspect ratio) so the object fits the image; never enlarge."""
    h, w = negative.mask.shape
    factor = min(1.0, height / h, width / w)
    return negative if factor == 1.0 else resize_negative(negative, int(h * factor), int(w * factor))


def prepare(sample: Sample) -> Sample:
    """A copy whose label maps may be written, with an ``anomaly`` map (zeros if absent)."""
    out = dict(sample)
    for key in ("image", "semantic", "instances", "anomaly"):
        if key in out:
            out[key] = np.array(out[key], copy=True)
    if "anomaly" not in out:
        out["anomaly"] = np.zeros(out["semantic"].shape, dtype=np.uint8)
    return out


def paste(sample: Sample, negative: Negative, semantic_value: int, rng: np.random.Generator) -> None:
    """Paste in place at a uniformly random position that keeps the object inside."""
    height, width = sample["semantic"].shape
    negative = fit_inside(negative, height, width)
    h, w = negative.mask.shape
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    region = slice(top, top + h), slice(left, left + w)
    mask = negative.mask
    sample["image"][region][mask] = negative.image[mask]
    sample["semantic"][region][mask] = semantic_value
    sample["anomaly"][region][mask] = 1
    if "instances" in sample:
        sample["instances"][region][mask] = int(sample["instances"].max()) + 1


def _scaled_range(pixels: tuple[int, int], width: int, reference_width: int) -> tuple[int, int]:
    factor = width / reference_width
    low = max(2, round(pixels[0] * factor))
    return low, max(low + 1, round(pixels[1] * factor))


@dataclass
class AnomalyMix:
    """The outlier images of Mask2Anomaly (Rai et al., 2024), §4.3 and §7.3 (AnomalyMix,
    after PEBAL (Tian et al., 2022)): with probability 0.2 one cut-out object is pasted at
    its own size at a random place, and the binary outlier mask ``anomaly`` (1 on the
    object, 0 elsewhere) feeds the mask contrastive loss (eq. 13). The official code writes
    254 into the semantic map there and drops 254 from the class list, so no ground-truth
    mask covers the object; 255 does the same for the mask and class losses and keeps 254
    for open-set ground truth. The object's size is scaled by ``width / reference_width``
    (see the module note)."""

    pool: NegativePool
    probability: float = 0.2
    reference_width: int = REFERENCE_WIDTH

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = prepare(sample)
        if rng.random() >= self.probability:
            return out
        negative = self.pool.sample(rng)
        factor = out["semantic"].shape[1] / self.reference_width
        h, w = negative.mask.shape
        paste(out, resize_negative(negative, round(h * factor), round(w * factor)), IGNORE_ID, rng)
        return out


@dataclass
class InstancePaste:
    """Paste ``count`` objects, each resized so its longer side is uniform in ``max_side``
    (pixels at ``reference_width``), labelled ``label`` in the semantic map.

    The official EAM/UNO code scales a whole ADE20K image to that max side (only ever
    down) and pastes class regions of it; our pools return objects cropped to their
    box, so the object itself gets the sampled size. Objects are drawn independently
    from the pool (the official code takes the 3 regions from one ADE20K image)."""

    pool: NegativePool
    label: int
    count: int = 3
    max_side: tuple[int, int] = (96, 500)
    probability: float = 1.0
    reference_width: int = REFERENCE_WIDTH

    def __post_init__(self) -> None:
        if not 0 <= self.label <= IGNORE_ID:
            raise AnomaskError(f"pasted label must be in 0..255, not {self.label}")
        if not 0 < self.max_side[0] < self.max_side[1]:
            raise AnomaskError(f"max_side must be an increasing pair of positive sizes, not {self.max_side}")

    @classmethod
    def eam(cls, pool: NegativePool, count: int = 3, max_side: tuple[int, int] = (96, 384)) -> InstancePaste:
        """EAM (Grcić et al., 2023), §3.4: negatives labelled void, so every mask learns to
        avoid them; 3 ADE20K regions, max side 96-384 px, every image (official code)."""
        return cls(pool, IGNORE_ID, count, max_side)

    @classmethod
    def uno(
        cls, pool: NegativePool, negative_class: int, count: int = 3, max_side: tuple[int, int] = (96, 500)
    ) -> InstancePaste:
        """UNO (Delić et al., 2024), §4, §6.1: 3 ADE20K instances labelled as the negative
        class K (0-based; the K+1-th class), max side 96-500 px (official code), every
        image."""
        return cls(pool, negative_class, count, max_side)

    def max_side_range(self, width: int) -> tuple[int, int]:
        """The pixel range at this image width, ``[low, high)``."""
        return _scaled_range(self.max_side, width, self.reference_width)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = prepare(sample)
        if rng.random() >= self.probability:
            return out
        low, high = self.max_side_range(out["semantic"].shape[1])
        for _ in range(self.count):
            negative = scale_to_max_side(self.pool.sample(rng), int(rng.integers(low, high)))
            paste(out, negative, self.label, rng)
        return out


def box_size_for_share(aspect: float, share: float, height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` of a box with ``w / h = aspect`` covering ``share`` of the image area,
    shrunk to fit the image."""
    h = np.sqrt(share * height * width / aspect)
    w = aspect * h
    factor = min(1.0, height / h, width / w)
    return max(1, round(h * factor)), max(1, round(w * factor))


@dataclass
class NoisyNegativePaste:
    """Noisy negatives (Bevandić et al., 2022), §3.3, §4.1, "RSP": the negative's box,
    resized to a share of the image area uniform in 0.1 %-10 %, pasted into every image.
    Outlier ground truth 1 there; the classifier loss skips outlier pixels (eq. 1:
    ``[o_ij = 0]``), so their semantic label is 255."""

    pool: NegativePool
    share: tuple[float, float] = (0.001, 0.1)
    probability: float = 1.0

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = prepare(sample)
        if rng.random() >= self.probability:
            return out
        negative = self.pool.sample(rng)
        height, width = out["semantic"].shape
        aspect = negative.mask.shape[1] / negative.mask.shape[0]
        h, w = box_size_for_share(aspect, float(rng.uniform(*self.share)), height, width)
        paste(out, resize_negative(negative, h, w), IGNORE_ID, rng)
        return out


class NoisyNegativeImages:
    """Whole negative images as samples (noisy negatives (Bevandić et al., 2022), §3.3:
    batches mix inlier and negative images; Fig. 4d): resized to cover ``size`` and
    centre-cropped; ``semantic`` all 255 (ignored by the classifier), ``anomaly`` 1 inside
    the box. Outside the box we write 255: the paper labels outliers "only within the
    bounding box" and the background of an ImageNet photo is no road-scene inlier either."""

    def __init__(self, pool: BoxNegatives, size: tuple[int, int], classes: tuple[ClassInfo, ...]) -> None:
        self.pool = pool
        self.size = size
        self.classes = classes
        """The inlier dataset's classes, so both can share a loader."""

    def __len__(self) -> int:
        return len(self.pool)

    def __getitem__(self, index: int) -> Sample:
        image, (x0, y0, x1, y1) = self.pool.image_and_box(index)
        height, width = self.size
        factor = max(height / image.shape[0], width / image.shape[1])
        size = (max(width, round(image.shape[1] * factor)), max(height, round(image.shape[0] * factor)))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
        anomaly = np.full(resized.shape[:2], IGNORE_ID, dtype=np.uint8)
        anomaly[round(y0 * factor) : round(y1 * factor), round(x0 * factor) : round(x1 * factor)] = 1
        crop = slice(top, top + height), slice(left, left + width)
        return {
            "image": np.ascontiguousarray(resized[crop]),
            "semantic": np.full((height, width), IGNORE_ID, dtype=np.uint8),
            "anomaly": np.ascontiguousarray(anomaly[crop]),
            "name": f"negative_{index:06d}",
        }
