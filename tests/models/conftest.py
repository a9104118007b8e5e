"""Tiny configurations shared by the network tests (fast on a 2-core CPU)."""

import pytest
import torch

from anomask.models.config import ModelConfig
from anomask.models.metadata import ModelMetadata

from ..conftest import CLASSES, TINY


def tiny_config(**overrides) -> ModelConfig:
    """tests/conftest.py's tiny Mask2Former with three decoder layers (deep supervision)."""
    return ModelConfig.small(**{**TINY, "dec_layers": 3, **overrides})


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
    config = tiny_config(global_masked_attention=True, backbone="resnet18", pretrained_backbone=False)
    return build_model(config).eval()
