"""anomask.models: the network (backbones, pixel decoder, transformer decoder, heads),
checkpoints and weight import.

Public API::

    build_model(config) -> nn.Module
    save_checkpoint(path, model, metadata); load_checkpoint(path) -> (model, metadata)
    load_metadata(path) -> ModelMetadata
    add_negative_class(model, metadata) -> (model, metadata)     # K+1 -> K+2 (UNO)
"""

from anomask.models.checkpoint import load_checkpoint, load_metadata, save_checkpoint
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata
from anomask.models.negative_class import add_negative_class
from anomask.models.network import Mask2Former, PerPixelTwoHead, SegmentationNetwork, build_model

__all__ = [
    "ClassInfo",
    "Mask2Former",
    "ModelConfig",
    "ModelMetadata",
    "PerPixelTwoHead",
    "SegmentationNetwork",
    "add_negative_class",
    "build_model",
    "load_checkpoint",
    "load_metadata",
    "save_checkpoint",
]
