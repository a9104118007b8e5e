"""Scoring and inference heads: pure tensor functions on the model output contract.

GPU parts (exportable to ONNX, fixed shapes): ``FusedHeads``, ``PerPixelHeads`` and the
functions they are made of. CPU parts (numpy/OpenCV): calibration, panoptic assembly,
open-set panoptic methods and GOSS output. See docs/heads.md.
"""

from anomask.models.heads.calibration import TprCalibrator, threshold_at_tpr, threshold_key, with_thresholds
from anomask.models.heads.evidence import (
    closed_set_semantic,
    gather_evidence,
    mask_ensemble,
    resize_fields,
    upsample_mask_logits,
)
from anomask.models.heads.fused import OUTPUT_NAMES, UPSAMPLE_MODES, FusedHeads
from anomask.models.heads.open_panoptic import (
    OpenPanopticConfig,
    goss_image,
    goss_images,
    goss_labels,
    open_set_panoptic,
    open_set_panoptic_labels,
    panoptic_images,
    panoptic_labels,
)
from anomask.models.heads.open_set import open_set_semantic
from anomask.models.heads.panoptic import PanopticLabels, known_panoptic, known_panoptic_labels, panoptic_fields
from anomask.models.heads.per_pixel import PerPixelHeads, op_msm
from anomask.models.heads.refinement import claimed_pixels, refine, refinement_class_filter
from anomask.models.heads.scores import ANOMALY_SCORES, AnomalyScore, anomaly_score, get_score

__all__ = [
    "ANOMALY_SCORES",
    "OUTPUT_NAMES",
    "UPSAMPLE_MODES",
    "AnomalyScore",
    "FusedHeads",
    "OpenPanopticConfig",
    "PanopticLabels",
    "PerPixelHeads",
    "TprCalibrator",
    "anomaly_score",
    "claimed_pixels",
    "closed_set_semantic",
    "gather_evidence",
    "get_score",
    "goss_image",
    "goss_images",
    "goss_labels",
    "known_panoptic",
    "known_panoptic_labels",
    "mask_ensemble",
    "op_msm",
    "open_set_panoptic",
    "open_set_panoptic_labels",
    "open_set_semantic",
    "panoptic_images",
    "panoptic_labels",
    "panoptic_fields",
    "refine",
    "refinement_class_filter",
    "resize_fields",
    "threshold_at_tpr",
    "threshold_key",
    "upsample_mask_logits",
    "with_thresholds",
]
