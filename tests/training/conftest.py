"""Fixtures of the training tests: small synthetic scenes (64 x 128) and ideal predictions
(the tiny synthetic dataset and tiny training run settings are in tests/conftest.py)."""

import pytest
import torch
import torch.nn.functional as F

from anomask.training.targets import ImageTargets, TargetSpec, build_targets

# classes: 0 road (stuff), 1 car (thing), 2 sky (stuff)
SPEC = TargetSpec(is_thing=(False, True, False))
UNO_SPEC = TargetSpec(is_thing=(False, True, False), negative_class=True)


def _scene(negative: bool = False, anomaly: bool = False) -> ImageTargets:
    """Road below, sky above, two cars; optionally a pasted negative (label 3) / anomaly map."""
    semantic = torch.zeros(64, 128, dtype=torch.uint8)
    semantic[:24] = 2
    semantic[32:48, 8:40] = 1
    semantic[36:52, 72:100] = 1
    instances = torch.zeros(64, 128, dtype=torch.int32)
    instances[32:48, 8:40] = 1
    instances[36:52, 72:100] = 2
    outliers = torch.zeros(64, 128, dtype=torch.uint8)
    outliers[52:64, 104:124] = 1
    if negative:
        semantic[outliers == 1] = 3
        instances[outliers == 1] = 3
    return build_targets(
        semantic, UNO_SPEC if negative else SPEC, instances=instances, anomaly=outliers if anomaly else None
    )


def _ideal_outputs(targets: list[ImageTargets], num_queries: int, num_outputs: int, strength: float = 12.0) -> dict:
    """Query j predicts segment j with a confident class and mask; the rest no-object."""
    batch = len(targets)
    logits = torch.full((batch, num_queries, num_outputs), -strength)
    logits[..., -1] = strength
    masks = torch.full((batch, num_queries, 16, 32), -strength)
    for b, t in enumerate(targets):
        for j, label in enumerate(t.labels.tolist()):
            logits[b, j] = -strength
            logits[b, j, label] = strength
            small = F.interpolate(t.masks[j][None, None].float(), size=(16, 32), mode="area")[0, 0]
            masks[b, j] = (small * 2 - 1) * strength
    return {"pred_logits": logits, "pred_masks": masks}


@pytest.fixture
def scene():
    return _scene


@pytest.fixture
def ideal_outputs():
    return _ideal_outputs
