"""``FusedHeads``: every GPU head in one exportable module.

``forward(pred_logits, pred_masks, threshold)`` returns fixed-shape tensors under fixed names
(``OUTPUT_NAMES``) at ``output_size``; never the ``[B, N, H, W]`` mask stack. The CPU
functions in ``open_panoptic`` (``panoptic_images``, ``goss_images``) turn them into
panoptic / GOSS images. Export with ``torch.onnx.export(heads, (pred_logits, pred_masks,
threshold), dynamo=True, opset_version=18)``; the eager path also validates its inputs.

Two ways to reach ``output_size`` (``upsample``):

- ``"masks"``: Mask2Former's inference. The N mask logits are upsampled bilinearly first and
  every head runs at output resolution. Exact, but it touches ``N x H x W`` values many
  times (N=100 at 1024x2048: 200 M per pass), far above the 5 % budget (docs/heads.md).
- ``"scores"`` (default): every head runs at mask resolution (H/4 x W/4, 16x fewer pixels);
  then only what the outputs need is upsampled: the K class scores, the anomaly score, the
  refinement claim logit, the panoptic winner's value and logit (bilinear, K+4 channels),
  and the winning / preferred mask indices (nearest). Semantic and anomaly maps stay smooth;
  panoptic segment *identities* change only in 4x4 blocks along mask boundaries. Agreement
  with ``"masks"`` is measured by ``anomask bench heads``.

``protocol="official"`` (``models/heads/official.py``) reproduces each method's official
code instead: ``"masks"`` upsampling and Mask2Anomaly's official refinement rule (two masks
at least, ``P_i m_i >= 0.5``, Cityscapes classes 2-10, refined value 0 in the code's units).
Flip averaging needs a second network run; the caller does it (``official.flip_average``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from anomask.errors import AnomaskError
from anomask.models.heads.calibration import threshold_key
from anomask.models.heads.checks import check_mask_outputs, check_metadata, check_threshold
from anomask.models.heads.evidence import closed_set_semantic, resize_fields, upsample_mask_logits
from anomask.models.heads.official import (
    check_protocol,
    official_claimed,
    official_refined_value,
    official_refinement_ids,
)
from anomask.models.heads.open_panoptic import class_set_entropy
from anomask.models.heads.open_set import open_set_semantic
from anomask.models.heads.panoptic import panoptic_fields
from anomask.models.heads.refinement import claim_logit, refine, refinement_class_filter
from anomask.models.heads.scores import evidence_for, get_score
from anomask.models.metadata import ModelMetadata

UPSAMPLE_MODES = ("scores", "masks")
OUTPUT_NAMES = (
    "semantic",
    "anomaly",
    "open_set",
    "mask_id",
    "mask_fg",
    "preferred_mask",
    "background",
    "mask_class",
    "mask_score",
    "mask_keep",
    "mask_area",
    "stuff_entropy",
    "thing_entropy",
)
"""Outputs of ``FusedHeads.forward``, in this order (B batch, H x W output size, N masks):

| name | dtype, shape | meaning |
| --- | --- | --- |
| semantic | uint8 [B,H,W] | closed-set class id, argmax over the K known classes (EAM (Grcić et al., 2023), eq. 3) |
| anomaly | float32 [B,H,W] | the selected score, higher = more anomalous (refined if asked) |
| open_set | uint8 [B,H,W] | ``semantic`` with 254 where anomaly > threshold (Mask2Anomaly (Rai et al., 2024), eq. 16) |
| mask_id | uint8 [B,H,W] | panoptic winner ``argmax_i score_i m_i`` over the kept masks |
| mask_fg | bool [B,H,W] | the winning mask has m >= 0.5 |
| preferred_mask | uint8 [B,H,W] | ``argmax_i m_i`` over all masks |
| background | bool [B,H,W] | the background map of Mask2Anomaly, eq. 17, above ``background_threshold`` |
| mask_class | int32 [B,N] | top class of each mask over all C outputs |
| mask_score | float32 [B,N] | its probability |
| mask_keep | bool [B,N] | known class and score > object_mask_threshold |
| mask_area | int32 [B,N] | pixels with m >= 0.5 at output resolution ("scores": mask-resolution count x area ratio) |
| stuff_entropy | float32 [B,N] | normalised entropy over the stuff classes (mining) |
| thing_entropy | float32 [B,N] | normalised entropy over the thing classes (mining) |
"""


class FusedHeads(nn.Module):
    """Semantic, anomaly, open-set and panoptic intermediates from Mask2Former outputs.

    Args:
        metadata: the model's metadata (class count, thing flags, refinement classes).
        score: an ``ANOMALY_SCORES`` name.
        refine: apply the refinement mask (Mask2Anomaly (Rai et al., 2024), eq. 15) to the score.
        output_size: ``(H, W)`` of every per-pixel output; None keeps the mask resolution.
        upsample: ``"scores"`` (fast, default) or ``"masks"`` (Mask2Former-exact), see above.
        object_mask_threshold: Mask2Former's panoptic keep threshold (0.8).
        refine_confidence: class probability a refinement mask needs (Mask2Anomaly, §4.4: 0.95).
        background_threshold: binarises Mask2Anomaly's background map, eq. 17 (0.5).
        protocol: ``"anomask"`` (default, as above) or ``"official"`` (the official code's
            inference: masks-first upsampling and refinement rule; ``official`` module).
    """

    def __init__(
        self,
        metadata: ModelMetadata,
        score: str = "eam",
        refine: bool = False,
        output_size: tuple[int, int] | None = None,
        upsample: Literal["scores", "masks"] = "scores",
        object_mask_threshold: float = 0.8,
        refine_confidence: float = 0.95,
        background_threshold: float = 0.5,
        protocol: Literal["anomask", "official"] = "anomask",
    ) -> None:
        super().__init__()
        check_metadata(metadata)
        if output_size is not None and (len(output_size) != 2 or min(output_size) < 1):
            raise AnomaskError(f"output_size must be (height, width) with positive sizes, got {output_size}")
        if upsample not in UPSAMPLE_MODES:
            raise AnomaskError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample!r}")
        self.metadata = metadata
        self.spec = get_score(score, metadata)
        self.score = score
        self.refine = refine
        self.output_size = None if output_size is None else (int(output_size[0]), int(output_size[1]))
        self.protocol = check_protocol(protocol)
        self.upsample = "masks" if protocol == "official" else upsample
        self.object_mask_threshold = object_mask_threshold
        self.refine_confidence = refine_confidence
        self.background_threshold = background_threshold
        lut = torch.zeros(metadata.architecture.num_outputs, dtype=torch.bool)
        lut[official_refinement_ids(metadata) if protocol == "official" else metadata.refinement_ids()] = True
        self.refined_value = official_refined_value(score) if protocol == "official" and refine else None
        """The official refined value (0 in the official code's units) in anomask's units."""
        self.register_buffer("refinement_lut", lut, persistent=False)
        things = set(metadata.thing_ids)
        stuff = [k for k in range(metadata.num_classes) if k not in things]
        self.register_buffer("stuff_ids", torch.tensor(stuff, dtype=torch.long), persistent=False)
        self.register_buffer("thing_ids", torch.tensor(sorted(things), dtype=torch.long), persistent=False)

    def calibrated_threshold(self, tpr: float = 0.95) -> Tensor:
        """The metadata's calibrated threshold for this score (and refinement), 0-d tensor."""
        key = threshold_key(self.score, self.refine, tpr)
        if key not in self.metadata.thresholds:
            known = ", ".join(sorted(self.metadata.thresholds)) or "none"
            raise AnomaskError(f"the model metadata has no threshold {key!r} (has: {known}); run calibration first")
        return torch.tensor(self.metadata.thresholds[key], dtype=torch.float32)

    def forward(self, pred_logits: Tensor, pred_masks: Tensor, threshold: Tensor) -> dict[str, Tensor]:
        check_mask_outputs(pred_logits, pred_masks, self.metadata)
        check_threshold(threshold)
        num_classes = self.metadata.num_classes
        num_masks = pred_logits.shape[1]
        mask_logits = upsample_mask_logits(pred_masks, self.output_size) if self.upsample == "masks" else pred_masks
        evidence = evidence_for(self.spec, pred_logits, mask_logits, num_classes)
        panoptic = panoptic_fields(evidence.probs, mask_logits, evidence.masks, num_classes, self.object_mask_threshold)
        continuous = [
            evidence.class_scores,
            self.spec.pixel(evidence).unsqueeze(1),
            panoptic.best.unsqueeze(1),
            panoptic.winner_logit.unsqueeze(1),
        ]
        official_claim = None
        if self.refine and self.refined_value is not None:
            official_claim = official_claimed(evidence.probs, mask_logits, self.refinement_lut, self.refine_confidence)
        elif self.refine:
            class_filter = refinement_class_filter(evidence.probs, self.refinement_lut, self.refine_confidence)
            continuous.append(claim_logit(mask_logits, class_filter).unsqueeze(1))
        fields = torch.cat(continuous, dim=1)
        indices = torch.stack([panoptic.mask_id, evidence.preferred_mask], dim=1)
        mask_area = panoptic.mask_area
        if self.output_size is not None and tuple(fields.shape[-2:]) != self.output_size:
            fields = resize_fields(fields, self.output_size)
            indices = resize_fields(indices.to(fields.dtype), self.output_size, discrete=True)
            scale = (self.output_size[0] * self.output_size[1]) / (pred_masks.shape[-2] * pred_masks.shape[-1])
            mask_area = torch.round(mask_area.to(torch.float32) * scale)
        semantic = closed_set_semantic(fields[:, :num_classes])
        anomaly = fields[:, num_classes]
        claimed = None
        if official_claim is not None:
            claimed = official_claim
            anomaly = anomaly.masked_fill(claimed, self.refined_value)
        elif self.refine:
            claimed = fields[:, num_classes + 3] > 0
            anomaly = refine(anomaly, claimed, self.spec, num_masks, num_classes)
        anomaly = anomaly.to(torch.float32)
        known_probs = evidence.probs[..., :num_classes]
        return {
            "semantic": semantic,
            "anomaly": anomaly,
            "open_set": open_set_semantic(semantic, anomaly, threshold.to(torch.float32), claimed),
            "mask_id": indices[:, 0].to(torch.uint8),
            "mask_fg": fields[:, num_classes + 2] >= 0,
            "preferred_mask": indices[:, 1].to(torch.uint8),
            "background": (1.0 - fields[:, num_classes + 1].clamp_min(0.0)) > self.background_threshold,
            "mask_class": panoptic.mask_class.to(torch.int32),
            "mask_score": panoptic.mask_score.to(torch.float32),
            "mask_keep": panoptic.mask_keep,
            "mask_area": mask_area.to(torch.int32),
            "stuff_entropy": class_set_entropy(known_probs, self.stuff_ids).to(torch.float32),
            "thing_entropy": class_set_entropy(known_probs, self.thing_ids).to(torch.float32),
        }
