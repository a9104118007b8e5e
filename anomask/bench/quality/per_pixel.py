"""The two terms of the fused score of noisy negatives (Bevandić et al., 2022), eq. 2, scored
apart: the outlier head's probability (OP) and the classifier's max-softmax uncertainty
(MSM = 1 - max_c softmax), next to their product OP x MSM (``PerPixelHeads``). ``anomask
eval`` gives a per-pixel model one score, OP x MSM; noisy negatives, Table 3, and EAM
(Grcić et al., 2023), Table 5, also report the terms alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from anomask.errors import AnomaskError
from anomask.evaluation.eval_data import EvalDataset
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.predictors import CheckpointPredictor, ImageOutputs
from anomask.models.heads.per_pixel import op_msm

PER_PIXEL_TERMS = ("op_msm", "op", "msm")


class PerPixelTermsPredictor(CheckpointPredictor):
    """A per-pixel checkpoint whose outputs are OP x MSM, OP and MSM at the image size (the
    same input rule as ``CheckpointPredictor``: native padding or a fixed network size)."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None) -> None:
        super().__init__(path, None, size)
        if self.metadata.architecture.meta_arch != "per_pixel":
            raise AnomaskError(f"{path}: not a per-pixel (noisy negatives) model")
        self.scores = PER_PIXEL_TERMS

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> ImageOutputs:
        height, width = image.shape[:2]
        x, output_size = self._network_input(image)
        out = self.network(x)
        both = torch.cat([out["sem_logits"], out["outlier_logits"]], dim=1)
        both = F.interpolate(both, size=output_size, mode="bilinear", align_corners=False)[0, :, :height, :width]
        sem, outlier = both[None, :-1], both[None, -1:]
        maps = {
            "op_msm": op_msm(sem, outlier)[0],
            "op": torch.sigmoid(outlier[0, 0]),
            "msm": 1.0 - sem.softmax(1).amax(1)[0],
        }
        return ImageOutputs(heads={}, scores={k: v.float().numpy() for k, v in maps.items()})


def per_pixel_terms(
    path: str | Path, entry: EvalDataset, size: tuple[int, int] | None = None, limit: int | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """``[subset][term]`` pixel metrics (``PixelAnomalyResult.to_dict()``) on ``entry`` and
    each of its anomaly groups (subset names as ``evaluate`` writes them)."""
    predictor = PerPixelTermsPredictor(path, size)
    count = len(entry) if limit is None else min(len(entry), limit)
    tables: dict[str, dict[str, PixelAnomalyAccumulator]] = {}
    for index in range(count):
        sample = entry.dataset[index]
        group = entry.group(index) if entry.group is not None else None
        subsets = [entry.name] + ([f"{entry.name} ({group})"] if group else [])
        outputs = predictor.predict(sample["image"])
        for subset in subsets:
            per_term = tables.setdefault(subset, {term: PixelAnomalyAccumulator() for term in PER_PIXEL_TERMS})
            for term, scores in outputs.scores.items():
                per_term[term].update(scores, sample["anomaly"], str(sample.get("name", index)))
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for subset, per_term in tables.items():
        try:
            results[subset] = {term: table.result().to_dict() for term, table in per_term.items()}
        except AnomaskError:  # a group without anomaly pixels (tiny test data): not scored
            continue
    return results
