"""Tiny configurations shared by the network tests (fast on a 2-core CPU)."""

import pytest
import torch

from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata

CLASSES = (
    ClassInfo("road", False, (128, 64, 128)),
    ClassInfo("sky", False, (70, 130, 180)),
    ClassInfo("car", True, (0, 0, 142)),
)


def tiny_config(**overrides) -> ModelConfig:
    base = dict(
        num_classes=3,
        num_queries=4,
        hidden_dim=32,
        mask_dim=32,
        num_heads=4,
        dim_feedforward=64,
        dec_layers=3,
        enc_layers=1,
        enc_dim_feedforward=64,
    )
    base.update(overrides)
    return ModelConfig.small(**base)


def tiny_metadata(config: ModelConfig) -> ModelMetadata:
    return ModelMetadata(classes=CLASSES, architecture=config)


@pytest.fixture
def make_config():
    """``make_config(**overrides)``: a tiny Mask2Former config (3 classes, 4 queries, dim 32)."""
    return tiny_config


@pytest.fixture
def make_metadata():
    return tiny_metadata


@pytest.fixture(scope="module")
def gma_model():
    """A tiny GMA Mask2Former (ResNet-18) in eval mode, shared within a test module."""
    from anomask.models import build_model

    torch.manual_seed(0)
    return build_model(tiny_config(global_masked_attention=True)).eval()
