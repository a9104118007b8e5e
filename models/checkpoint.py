"""Checkpoints: ONE ``.safetensors`` file, weights plus the :class:`ModelMetadata` JSON in
the header's ``__metadata__`` (no pickle anywhere, so loading an untrusted file runs no
code). Writes are atomic (``anomask.files.atomic_file``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from anomask.errors import AnomaskError
from anomask.files import atomic_file, require_file
from anomask.models.metadata import ModelMetadata
from anomask.models.network import SegmentationNetwork, build_model
from anomask.models.state_dict import load_state_dict_strict

FORMAT = "anomask-checkpoint-1"
FORMAT_KEY = "format"
METADATA_KEY = "anomask_metadata"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, metadata: ModelMetadata) -> Path:
    """Write ``model``'s weights and ``metadata`` to ``path`` atomically; returns the path.

    ``metadata.architecture`` must be the config the model was built with, so the file
    rebuilds the same network."""
    path = Path(path)
    config = getattr(model, "config", None)
    if config != metadata.architecture:
        raise AnomaskError(f"{path}: metadata.architecture does not match the model's config ({config})")
    if not path.parent.is_dir():
        raise AnomaskError(f"{path}: folder {path.parent} does not exist")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    header = {FORMAT_KEY: FORMAT, METADATA_KEY: metadata.to_json()}
    with atomic_file(path) as temporary:
        save_file(tensors, temporary, metadata=header)
    return path


def _read(path: Path, device: str, with_tensors: bool) -> tuple[ModelMetadata, dict[str, torch.Tensor]]:
    require_file(path, "checkpoint file")
    try:
        with safe_open(path, framework="pt", device=device) as f:
            header = f.metadata() or {}
            if METADATA_KEY not in header:
                raise AnomaskError(
                    f"{path}: not an anomask checkpoint (the safetensors header has no {METADATA_KEY!r}; "
                    "import foreign weights with `anomask convert`)"
                )
            metadata = ModelMetadata.from_json(header[METADATA_KEY], source=str(path))
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except SafetensorError as error:
        raise AnomaskError(f"{path}: not a readable safetensors file ({error})") from error
    return metadata, tensors


def load_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The metadata alone (reads only the file header)."""
    return _read(Path(path), "cpu", with_tensors=False)[0]


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[SegmentationNetwork, ModelMetadata]:
    """Rebuild the network from the metadata, load the weights strictly, return it in eval
    mode on ``map_location`` with its metadata."""
    path = Path(path)
    metadata, tensors = _read(path, "cpu", with_tensors=True)
    try:
        model = build_model(metadata.architecture, load_pretrained=False)
    except AnomaskError as error:
        raise AnomaskError(f"{path}: {error}") from error
    load_state_dict_strict(model, tensors, str(path))
    return model.to(map_location).eval(), metadata
