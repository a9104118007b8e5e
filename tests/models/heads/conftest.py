"""Shared builders for the heads tests: tiny metadata and exact logits from probabilities."""

import math

import pytest
import torch

from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata

ROAD, SKY, CAR, PERSON = 0, 1, 2, 3


def make_metadata(num_classes: int = 3, negative: bool = False, **kwargs) -> ModelMetadata:
    """road, sky (stuff), car, person (things): the first ``num_classes`` of them."""
    classes = (
        ClassInfo("road", False, (128, 64, 128)),
        ClassInfo("sky", False, (70, 130, 180)),
        ClassInfo("car", True, (0, 0, 142)),
        ClassInfo("person", True, (220, 20, 60)),
    )[:num_classes]
    return ModelMetadata(
        classes=classes, architecture=ModelConfig.small(num_classes=num_classes, negative_class=negative), **kwargs
    )


def logits_from_probs(rows: list[list[float]]) -> torch.Tensor:
    """``[1, N, C]`` logits whose softmax is exactly ``rows`` (each row sums to 1)."""
    for row in rows:
        assert math.isclose(sum(row), 1.0), row
    return torch.tensor(rows, dtype=torch.float64).log().unsqueeze(0)


def mask_logits_from_assignments(maps: list[list[list[float]]]) -> torch.Tensor:
    """``[1, N, H, W]`` mask logits whose sigmoid is exactly ``maps``."""
    m = torch.tensor(maps, dtype=torch.float64)
    return (m / (1 - m)).log().unsqueeze(0)


@pytest.fixture
def metadata_factory():
    return make_metadata


@pytest.fixture
def probs_to_logits():
    return logits_from_probs


@pytest.fixture
def assignments_to_logits():
    return mask_logits_from_assignments
