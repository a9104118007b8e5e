"""anomask.models: the network (backbones, pixel decoder, transformer decoder, heads),
checkpoints and weight import.

Public API::

    build_model(config) -> nn.Module
    save_checkpoint(path, model, metadata); load_checkpoint(path) -> (model, metadata)
    load_metadata(path) -> ModelMetadata
    add_negative_class(model, metadata) -> (model, metadata)     # K+1 -> K+2 (UNO)

The names are imported on first use (PEP 562), so ``anomask.models.metadata`` and
``anomask.models.config`` stay importable without torch: the data tools, readers and the
ROS node's start-up read class lists and metadata without paying for the network.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ClassInfo": "anomask.models.metadata",
    "ModelMetadata": "anomask.models.metadata",
    "ModelConfig": "anomask.models.config",
    "load_checkpoint": "anomask.models.checkpoint",
    "load_metadata": "anomask.models.checkpoint",
    "save_checkpoint": "anomask.models.checkpoint",
    "add_negative_class": "anomask.models.negative_class",
    "Mask2Former": "anomask.models.network",
    "PerPixelTwoHead": "anomask.models.network",
    "SegmentationNetwork": "anomask.models.network",
    "build_model": "anomask.models.network",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anomask.models' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
