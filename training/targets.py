"""Mask-classification targets from a dataset sample (the preamble's sample contract).

Each image becomes a set of segments ``(label, binary mask)``: one per thing instance
(when the sample has ``instances``), one per stuff class present, and one per thing class
for its pixels without an instance id. Pixels labelled 255 (void) or 254 (unknown) belong
to no segment, so every mask is trained to stay off them — this is also how the void
negatives of EAM (Grcić et al., 2023), §3.4, work. Pixels labelled K (the negative class of
UNO (Delić et al., 2024), §4) form segments of label K, matched like any other class; K
counts as a thing, so pasted negatives with instance ids become one segment each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID


@dataclass
class ImageTargets:
    labels: torch.Tensor
    """``[T]`` int64 class ids (0..K-1, or K for the negative class)."""
    masks: torch.Tensor
    """``[T, H, W]`` bool."""
    semantic: torch.Tensor
    """``[H, W]`` int64 label map (255 ignore), for per-pixel losses."""
    anomaly: torch.Tensor | None
    """``[H, W]`` uint8 0 inlier / 1 outlier / 255 ignore, or ``None``."""

    def to(self, device: torch.device | str) -> ImageTargets:
        anomaly = None if self.anomaly is None else self.anomaly.to(device)
        return ImageTargets(self.labels.to(device), self.masks.to(device), self.semantic.to(device), anomaly)


@dataclass(frozen=True)
class TargetSpec:
    """What the label ids of a dataset mean for the model being trained."""

    is_thing: tuple[bool, ...]
    """One flag per known class (K entries)."""
    negative_class: bool = False
    """Whether label K (UNO negative) is a class of the model. Without it, label K in a
    sample is an error: negatives must then be written as void (255)."""

    @property
    def num_classes(self) -> int:
        return len(self.is_thing)


def build_targets(
    semantic: torch.Tensor,
    spec: TargetSpec,
    instances: torch.Tensor | None = None,
    anomaly: torch.Tensor | None = None,
    name: str = "sample",
) -> ImageTargets:
    """Segments of one image from its ``semantic [H, W]`` map (and optional instance ids)."""
    semantic = semantic.long()
    k = spec.num_classes
    present = torch.unique(semantic)
    valid = present[(present != IGNORE_ID) & (present != UNKNOWN_ID)]
    top = k + int(spec.negative_class)
    bad = valid[valid >= top]
    if bad.numel():
        if int(bad[0]) == k:
            raise AnomaskError(
                f"{name}: label {k} (the UNO negative class) appears but the model has no negative "
                "class; use the 'uno' recipe (K+2 model) or write pasted negatives as void (255)"
            )
        raise AnomaskError(
            f"{name}: label {int(bad[0])} is outside the model's {k} classes "
            "(does the checkpoint match this dataset's classes?)"
        )
    labels: list[int] = []
    masks: list[torch.Tensor] = []
    for class_id in valid.tolist():
        region = semantic == class_id
        thing = class_id == k or spec.is_thing[class_id]
        if thing and instances is not None:
            ids = instances.long()[region]
            for instance_id in torch.unique(ids).tolist():
                if instance_id == 0:
                    continue
                labels.append(class_id)
                masks.append(region & (instances == instance_id))
            leftover = region & (instances == 0)
            if bool(leftover.any()):
                labels.append(class_id)
                masks.append(leftover)
        else:
            labels.append(class_id)
            masks.append(region)
    height, width = semantic.shape
    stacked = torch.stack(masks) if masks else torch.zeros(0, height, width, dtype=torch.bool)
    return ImageTargets(
        labels=torch.tensor(labels, dtype=torch.int64),
        masks=stacked,
        semantic=semantic,
        anomaly=None if anomaly is None else anomaly.to(torch.uint8),
    )


def build_batch_targets(samples: Sequence[dict], spec: TargetSpec) -> list[ImageTargets]:
    """Targets for a list of samples (numpy arrays or tensors, the sample contract)."""
    out = []
    for sample in samples:
        semantic = torch.as_tensor(sample["semantic"])
        instances = sample.get("instances")
        anomaly = sample.get("anomaly")
        out.append(
            build_targets(
                semantic,
                spec,
                instances=None if instances is None else torch.as_tensor(instances),
                anomaly=None if anomaly is None else torch.as_tensor(anomaly),
                name=str(sample.get("name", "sample")),
            )
        )
    return out


def outlier_target(targets: ImageTargets, num_classes: int) -> torch.Tensor:
    """Per-pixel outlier ground truth ``[H, W]`` uint8: 0 inlier, 1 outlier, 255 ignore.

    The sample's ``anomaly`` map when it has one; otherwise derived from the semantic map:
    known classes are inliers, the negative class K is outlier, everything else ignored.
    """
    if targets.anomaly is not None:
        return targets.anomaly
    semantic = targets.semantic
    out = torch.full_like(semantic, IGNORE_ID, dtype=torch.uint8)
    out[semantic < num_classes] = 0
    out[semantic == num_classes] = 1
    return out
