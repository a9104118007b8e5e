"""Open-set panoptic segmentation (three methods) and GOSS output.

GPU part: ``class_set_entropy`` (per-mask entropies for ``mining``); everything else the
methods need comes from ``FusedHeads``' fixed-shape outputs. CPU part (numpy + OpenCV
connected components, no per-pixel Python): the functions below, which take one image's
outputs (the ``FusedHeads`` dict indexed at one batch element, as numpy) or, for
``panoptic_images`` / ``goss_images``, the whole batch.

Every function has a ``*_labels`` form returning ``PanopticLabels`` (class map, instance
map: unambiguous for any label set) and a form returning the published int32 image, encoded
from that pair (``PanopticLabels.encode``). Unknown instances are class 254 with instances
1..n (largest first; ``254*1000 + i`` encoded) over the known panoptic of
``panoptic.known_panoptic_labels``; they never take pixels of a known *thing* segment
(assumption 2 of Mask2Anomaly (Rai et al., 2024), §6.2).

Methods (named in ``anomask.models.panoptic_methods``):
- ``closed-set``: the known panoptic alone, no unknown instances.
- ``mining`` (Mask2Anomaly (Rai et al., 2024), §6.2-6.3, eq. 17): background B =
  ``1 - max_i score_i m_i`` over the kept known masks, thresholded on the GPU
  (``background``); connected components of B; the ``mining_components`` largest
  (Mask2Anomaly, Table 7: 3) are tested: IoU with every mask, and for the masks that overlap
  significantly (IoU > ``mining_iou``) the mean stuff-class entropy must exceed the mean
  thing-class entropy for the component to become an unknown instance. The paper leaves the
  IoU threshold, the binarisation of B and the entropy normalisation open; we use 0.5, 0.5
  and entropies divided by log(set size) so stuff and thing sets of different sizes compare
  fairly. Without the mask stack on the CPU, a component's intersection with mask i is
  counted over the component pixels whose preferred mask (``argmax_i m_i``) is i.
- ``eam`` (EAM (Grcić et al., 2023), §4.2): thresholded anomaly score (the ``open_set``
  map's 254 pixels); each anomalous pixel goes to its preferred mask; every mask with at
  least ``min_area`` (200) such pixels is one unknown instance.
- ``components`` (RbA's open-panoptic code): thresholded score, 3x3 morphological open then
  close, 4-connected components restricted to pixels the known panoptic left void, each with
  at least ``min_area`` pixels an unknown instance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from torch import Tensor

from anomask.errors import AnomaskError
from anomask.models.heads.panoptic import INSTANCE_DIVISOR, VOID, PanopticLabels, known_panoptic_labels
from anomask.models.metadata import UNKNOWN_ID, ModelMetadata
from anomask.models.panoptic_methods import CLOSED_SET, PANOPTIC_METHODS

MAX_INSTANCE = INSTANCE_DIVISOR - 1
_KERNEL = np.ones((3, 3), np.uint8)


def class_set_entropy(probs: Tensor, class_ids: Tensor) -> Tensor:
    """GPU part: ``[B, N]`` entropy of each mask's class distribution renormalised over
    ``class_ids``, divided by ``log(len(class_ids))`` (0 for sets of fewer than 2 classes)."""
    if class_ids.numel() < 2:
        return probs.new_zeros(probs.shape[:2])
    subset = probs.index_select(-1, class_ids)
    subset = subset / subset.sum(-1, keepdim=True).clamp_min(1e-12)
    entropy = -(subset * subset.clamp_min(1e-12).log()).sum(-1)
    return entropy / math.log(class_ids.numel())


@dataclass(frozen=True)
class OpenPanopticConfig:
    overlap_threshold: float = 0.8
    """Mask2Former's segment overlap rule for the known classes."""
    min_area: int = 200
    """Unknown instances with fewer pixels are dropped (EAM (Grcić et al., 2023), §4.2;
    RbA's pixel_min)."""
    mining_components: int = 3
    """Largest background components examined by ``mining``
    (Mask2Anomaly (Rai et al., 2024), Table 7)."""
    mining_iou: float = 0.5
    """IoU above which a component and a mask overlap significantly (``mining``)."""

    def __post_init__(self) -> None:
        if self.min_area < 1 or self.mining_components < 1:
            raise AnomaskError("min_area and mining_components must be at least 1")
        if not 0.0 <= self.overlap_threshold <= 1.0 or not 0.0 <= self.mining_iou <= 1.0:
            raise AnomaskError("overlap_threshold and mining_iou must lie in [0, 1]")


def _instances_by_area(
    labels: np.ndarray, allowed: np.ndarray, accepted: np.ndarray | None, min_area: int
) -> np.ndarray:
    """Relabel ``labels`` (0 = none) over ``allowed`` pixels as 1..n, largest first, keeping
    labels that are ``accepted`` and have at least ``min_area`` allowed pixels."""
    counts = np.bincount(labels[allowed], minlength=int(labels.max()) + 1)
    counts[0] = 0
    keep = counts >= min_area
    if accepted is not None:
        keep &= accepted
    order = np.flatnonzero(keep)
    order = order[np.argsort(-counts[order], kind="stable")][:MAX_INSTANCE]
    lut = np.zeros(counts.shape[0], dtype=np.int32)
    lut[order] = np.arange(1, order.shape[0] + 1, dtype=np.int32)
    return np.where(allowed, lut[labels], 0).astype(np.int32)


def _components(binary: np.ndarray) -> np.ndarray:
    _, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    return labels


def unknown_eam(out: Mapping[str, np.ndarray], allowed: np.ndarray, config: OpenPanopticConfig) -> np.ndarray:
    anomalous = (out["open_set"] == UNKNOWN_ID) & allowed
    labels = out["preferred_mask"].astype(np.int32) + 1
    return _instances_by_area(labels, anomalous, None, config.min_area)


def unknown_components(out: Mapping[str, np.ndarray], void: np.ndarray, config: OpenPanopticConfig) -> np.ndarray:
    binary = (out["open_set"] == UNKNOWN_ID).astype(np.uint8)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, _KERNEL)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, _KERNEL)
    return _instances_by_area(_components(binary), void, None, config.min_area)


def unknown_mining(out: Mapping[str, np.ndarray], allowed: np.ndarray, config: OpenPanopticConfig) -> np.ndarray:
    labels = _components(out["background"])
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    candidates = np.flatnonzero(areas >= config.min_area)
    candidates = candidates[np.argsort(-areas[candidates], kind="stable")][: config.mining_components]
    accepted = np.zeros(areas.shape[0], dtype=bool)
    if candidates.size == 0:
        return np.zeros(labels.shape, dtype=np.int32)
    num_masks = out["mask_area"].shape[0]
    slot = np.full(areas.shape[0], -1, dtype=np.int64)
    slot[candidates] = np.arange(candidates.size)
    pixel_slot = slot[labels]
    inside = pixel_slot >= 0
    joint = pixel_slot[inside] * num_masks + out["preferred_mask"][inside].astype(np.int64)
    inter = np.bincount(joint, minlength=candidates.size * num_masks).reshape(candidates.size, num_masks)
    union = areas[candidates][:, None] + out["mask_area"][None, :].astype(np.int64) - inter
    significant = inter / np.maximum(union, 1) > config.mining_iou
    for row, component in enumerate(candidates):
        overlapping = significant[row]
        if overlapping.any():
            stuff = out["stuff_entropy"][overlapping].mean()
            thing = out["thing_entropy"][overlapping].mean()
            accepted[component] = stuff > thing
    return _instances_by_area(labels, allowed, accepted, config.min_area)


def open_set_panoptic(
    out: Mapping[str, np.ndarray],
    thing_ids: list[int],
    method: str,
    config: OpenPanopticConfig = OpenPanopticConfig(),
) -> np.ndarray:
    """CPU part for one image: ``[H, W]`` int32 panoptic image (``open_set_panoptic_labels``
    encoded)."""
    return open_set_panoptic_labels(out, thing_ids, method, config).encode()


def open_set_panoptic_labels(
    out: Mapping[str, np.ndarray],
    thing_ids: list[int],
    method: str,
    config: OpenPanopticConfig = OpenPanopticConfig(),
) -> PanopticLabels:
    """CPU part for one image: ``[H, W]`` class and instance maps by ``method``, one of
    ``PANOPTIC_METHODS`` (``closed-set``: Mask2Former's panoptic of the known classes)."""
    if method not in PANOPTIC_METHODS:
        raise AnomaskError(f"unknown panoptic method {method!r}; valid: {', '.join(PANOPTIC_METHODS)}")
    known = known_panoptic_labels(
        out["mask_id"],
        out["mask_fg"],
        out["mask_class"],
        out["mask_keep"],
        out["mask_area"],
        thing_ids,
        config.overlap_threshold,
    )
    if method == CLOSED_SET:
        return known
    not_thing = known.instances == 0  # stuff or void
    if method == "eam":
        unknown = unknown_eam(out, not_thing, config)
    elif method == "components":
        unknown = unknown_components(out, known.classes == VOID, config)
    else:
        unknown = unknown_mining(out, not_thing, config)
    found = unknown > 0
    return PanopticLabels(
        np.where(found, UNKNOWN_ID, known.classes).astype(np.int32),
        np.where(found, unknown, known.instances).astype(np.int32),
    )


def goss_image(open_set: np.ndarray, preferred_mask: np.ndarray) -> np.ndarray:
    """GOSS output for one image as the int32 panoptic image (``goss_labels`` encoded)."""
    return goss_labels(open_set, preferred_mask).encode()


def goss_labels(open_set: np.ndarray, preferred_mask: np.ndarray) -> PanopticLabels:
    """GOSS output (GOSS (Hong et al., 2022), §3.1) for one image: known pixels keep their
    class id and no instance (GOSS does not split known classes into instances); unknown
    pixels are grouped into segments, one per (4-connected component of the unknown region,
    preferred mask) pair, instances 1.. largest first (segments beyond 999 share 999)."""
    unknown = open_set == UNKNOWN_ID
    classes = open_set.astype(np.int32)
    instances = np.zeros(classes.shape, dtype=np.int32)
    if unknown.any():
        key = _components(unknown)[unknown].astype(np.int64) * 256 + preferred_mask[unknown]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        rank = np.empty(counts.shape[0], dtype=np.int32)
        rank[np.argsort(-counts, kind="stable")] = np.arange(1, counts.shape[0] + 1, dtype=np.int32)
        instances[unknown] = np.minimum(rank[inverse.ravel()], MAX_INSTANCE)
    return PanopticLabels(classes, instances)


def _as_numpy(outputs: Mapping[str, np.ndarray | Tensor]) -> dict[str, np.ndarray]:
    return {
        name: value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
        for name, value in outputs.items()
    }


def _images(outputs: Mapping[str, np.ndarray | Tensor]) -> list[dict[str, np.ndarray]]:
    arrays = _as_numpy(outputs)
    batch = arrays["open_set"].shape[0]
    return [{name: value[b] for name, value in arrays.items()} for b in range(batch)]


def panoptic_images(
    outputs: Mapping[str, np.ndarray | Tensor],
    metadata: ModelMetadata,
    method: str = CLOSED_SET,
    config: OpenPanopticConfig = OpenPanopticConfig(),
) -> np.ndarray:
    """CPU part for a batch of ``FusedHeads`` outputs: ``[B, H, W]`` int32 panoptic images."""
    return panoptic_labels(outputs, metadata, method, config).encode()


def panoptic_labels(
    outputs: Mapping[str, np.ndarray | Tensor],
    metadata: ModelMetadata,
    method: str = CLOSED_SET,
    config: OpenPanopticConfig = OpenPanopticConfig(),
) -> PanopticLabels:
    """CPU part for a batch of ``FusedHeads`` outputs: ``[B, H, W]`` class and instance maps."""
    pairs = [open_set_panoptic_labels(image, metadata.thing_ids, method, config) for image in _images(outputs)]
    return PanopticLabels(np.stack([p.classes for p in pairs]), np.stack([p.instances for p in pairs]))


def goss_images(outputs: Mapping[str, np.ndarray | Tensor]) -> np.ndarray:
    """CPU part for a batch: ``[B, H, W]`` int32 GOSS images."""
    return np.stack([goss_image(image["open_set"], image["preferred_mask"]) for image in _images(outputs)])
