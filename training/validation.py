"""Periodic validation through the deployed heads: closed-set mIoU on the validation split,
pixel AP / FPR95 / AUROC of the anomaly score on the anomaly split the data pipeline chose
(the anomaly *validation* split where the dataset has one, never the test split then), and
the score's threshold at 95 % TPR on the same images (written into the checkpoint metadata
for the deployed model).

Images of any size are padded (bottom/right, with the normalised mean, i.e. zeros) to a
multiple of 32 for the network and the heads' outputs cropped back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.metrics.semantic import SemanticAccumulator
from anomask.models import ModelMetadata
from anomask.models.heads import FusedHeads, PerPixelHeads, TprCalibrator
from anomask.training.config import ValidationConfig
from anomask.training.data.sample import Dataset, Sample

STRIDE = 32
CALIBRATION_TPR = 0.95


@dataclass(frozen=True)
class ValidationResult:
    metrics: dict[str, float] = field(default_factory=dict)
    """``miou``, ``ap``, ``fpr95``, ``auroc`` (those that could be computed)."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Calibrated thresholds, e.g. ``{"uno@tpr95": -0.41}``."""
    calibration_images: int = 0
    """Anomaly-split images the thresholds were calibrated on (0: no thresholds)."""


def normalise(images: np.ndarray, metadata: ModelMetadata, device: torch.device) -> torch.Tensor:
    """uint8 RGB ``[B, H, W, 3]`` -> normalised float ``[B, 3, H, W]`` (metadata mean/std)."""
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    mean = torch.tensor(metadata.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(metadata.std, device=device).view(1, 3, 1, 1)
    return (batch - mean) / std


def _network_input(
    image: np.ndarray, metadata: ModelMetadata, scale: float, device: torch.device
) -> tuple[torch.Tensor, tuple[int, int]]:
    """The normalised image resized by ``scale`` and padded to a multiple of 32, and the
    output size at which the heads put the padded frame back at label resolution."""
    tensor = normalise(image[None], metadata, device)
    if scale != 1.0:
        size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    height, width = tensor.shape[-2:]
    tensor = F.pad(tensor, (0, -width % STRIDE, 0, -height % STRIDE))
    factor_h, factor_w = image.shape[0] / height, image.shape[1] / width
    return tensor, (round(tensor.shape[-2] * factor_h), round(tensor.shape[-1] * factor_w))


def _limited(dataset: Dataset, max_images: int | None) -> Iterator[Sample]:
    for index in range(len(dataset) if max_images is None else min(len(dataset), max_images)):
        yield dataset[index]


@torch.no_grad()
def predict(
    model: nn.Module, metadata: ModelMetadata, image: np.ndarray, score: str, device: torch.device, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(semantic uint8 [H, W], anomaly float32 [H, W])`` for one uint8 RGB image."""
    height, width = image.shape[:2]
    tensor, output_size = _network_input(image, metadata, scale, device)
    outputs = model(tensor)
    threshold = torch.zeros((), device=device)
    if metadata.architecture.meta_arch == "per_pixel":
        heads = PerPixelHeads(metadata, output_size=output_size).to(device)
        result = heads(outputs["sem_logits"], outputs["outlier_logits"], threshold)
    else:
        heads = FusedHeads(metadata, score=score, output_size=output_size).to(device)
        result = heads(outputs["pred_logits"], outputs["pred_masks"], threshold)
    semantic = result["semantic"][0, :height, :width].cpu().numpy()
    anomaly = result["anomaly"][0, :height, :width].float().cpu().numpy()
    return semantic, anomaly


def _anomaly_metrics(
    model: nn.Module,
    metadata: ModelMetadata,
    dataset: Dataset,
    config: ValidationConfig,
    score: str,
    device: torch.device,
    thresholds: dict[str, float],
) -> tuple[dict[str, float], int]:
    """AP / FPR95 / AUROC over the split, and per anomaly group (``ap_seen`` ...) when the
    dataset tells each image's group (the synthetic default's validation split holds only
    ``seen`` objects, those of the negative pool; a test split also ``unseen`` ones). Fills
    ``thresholds``; returns the metrics and the number of images read."""
    group_of = getattr(dataset, "group", None)
    accumulators: dict[str, PixelAnomalyAccumulator] = {"": PixelAnomalyAccumulator()}
    calibrator = TprCalibrator()
    images = 0
    for index, sample in enumerate(_limited(dataset, config.max_images)):
        images += 1
        _, anomaly = predict(model, metadata, sample["image"], score, device, config.scale)
        group = group_of(index) if group_of is not None else None
        keys = [""] + ([f"_{group}"] if group else [])
        for key in keys:
            accumulators.setdefault(key, PixelAnomalyAccumulator()).update(
                anomaly, sample["anomaly"], sample.get("name", "")
            )
        calibrator.update(anomaly, sample["anomaly"])
    metrics: dict[str, float] = {}
    for key, accumulator in accumulators.items():
        try:
            result = accumulator.result()
        except AnomaskError:  # a group without anomaly (or inlier) pixels: undefined there
            continue
        metrics.update({f"ap{key}": result.ap, f"fpr95{key}": result.fpr95, f"auroc{key}": result.auroc})
    if calibrator.num_positives:
        thresholds.update(calibrator.thresholds(score, tprs=(CALIBRATION_TPR,)))
    return metrics, images


def score_name(metadata: ModelMetadata, config: ValidationConfig) -> str:
    """The score validated: OP x MSM for per-pixel models
    (noisy negatives (Bevandić et al., 2022), eq. 2), else the config's."""
    return "op_msm" if metadata.architecture.meta_arch == "per_pixel" else config.score


def validate(
    model: nn.Module,
    metadata: ModelMetadata,
    val_set: Dataset | None,
    anomaly_set: Dataset | None,
    config: ValidationConfig,
    device: torch.device,
) -> ValidationResult:
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    calibration_images = 0
    score = score_name(metadata, config)
    try:
        if val_set is not None and len(val_set):
            semantic_acc = SemanticAccumulator(metadata.num_classes)
            for sample in _limited(val_set, config.max_images):
                semantic, _ = predict(model, metadata, sample["image"], score, device, config.scale)
                semantic_acc.update(semantic, sample["semantic"], sample.get("name", ""))
            metrics["miou"] = semantic_acc.result().miou
        if anomaly_set is not None and len(anomaly_set):
            anomaly_metrics, images = _anomaly_metrics(model, metadata, anomaly_set, config, score, device, thresholds)
            metrics.update(anomaly_metrics)
            calibration_images = images if thresholds else 0
    finally:
        model.train(was_training)
    return ValidationResult(metrics, thresholds, calibration_images)
