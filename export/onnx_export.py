"""ONNX export of the deployed graph (network + fused heads), with the metadata inside.

Uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, opset 18): the legacy
TorchScript exporter emits a GridSample variant ONNX Runtime cannot run, and the network's
deformable attention samples with ``grid_sample``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from anomask import __version__
from anomask.errors import AnomaskError
from anomask.export.export_info import INPUT_FRAMES, INPUT_THRESHOLD, METADATA_KEY, ExportInfo, ExportSettings
from anomask.export.graph import DeployGraph, threshold_tensor
from anomask.export.op_support import check_tensorrt_support
from anomask.files import atomic_file, require_file
from anomask.models.metadata import ModelMetadata


def example_frames(settings: ExportSettings, seed: int = 0) -> np.ndarray:
    """Random uint8 frames of the graph's input shape (tracing input, parity frames)."""
    height, width = settings.input_size
    return np.random.default_rng(seed).integers(0, 256, (settings.batch, height, width, 3), dtype=np.uint8)


def deployed_metadata(metadata: ModelMetadata, settings: ExportSettings) -> ModelMetadata:
    """The checkpoint metadata as the deployed model reports it: score and input format as
    chosen at export."""
    return dataclasses.replace(metadata, score=settings.score, input_format=settings.input_format)


def export_onnx(
    network: nn.Module,
    heads: nn.Module,
    metadata: ModelMetadata,
    settings: ExportSettings,
    out_path: str | os.PathLike,
    command: str | None = None,
    check_tensorrt: bool = True,
) -> ExportInfo:
    """Export ``DeployGraph(network, heads)`` to ``out_path`` and return what it carries.

    The file is written to a temporary name in the same folder and moved into place only
    when complete. With ``check_tensorrt`` the graph must pass the TensorRT op-support check
    (``op_support.check_tensorrt_support``) before anything is written.
    """
    out_path = Path(out_path)
    graph = DeployGraph(network, heads, metadata, settings).eval()
    frames = torch.from_numpy(example_frames(settings))
    threshold = threshold_tensor(0.5)
    with torch.no_grad():
        output_names = tuple(graph(frames, threshold))
    dynamic_shapes = None
    if settings.dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=settings.batch)
        dynamic_shapes = {"frames": {0: batch}, "threshold": None}
    optimizer_log = logging.getLogger("onnxscript")
    level = optimizer_log.level
    with warnings.catch_warnings():
        # The exporter's and optimizer's chatter (deprecations, skipped constant folding).
        warnings.simplefilter("ignore")
        optimizer_log.setLevel(logging.ERROR)
        try:
            program = _export(graph, frames, threshold, settings, output_names, dynamic_shapes)
        finally:
            optimizer_log.setLevel(level)
    model = program.model_proto
    _shapes_after_cast(model)
    _skip_uint8_round_trips(model)
    if check_tensorrt:
        check_tensorrt_support(model, source=str(out_path))
    info = ExportInfo(
        metadata=deployed_metadata(metadata, settings),
        settings=settings,
        outputs=output_names,
        anomask_version=__version__,
        command=command,
    )
    set_export_info(model, info)
    save_model_atomic(model, out_path)
    return info


def _export(
    graph: nn.Module,
    frames: torch.Tensor,
    threshold: torch.Tensor,
    settings: ExportSettings,
    output_names: tuple[str, ...],
    dynamic_shapes: dict | None,
):
    return torch.onnx.export(
        graph,
        (frames, threshold),
        dynamo=True,
        opset_version=settings.opset,
        input_names=[INPUT_FRAMES, INPUT_THRESHOLD],
        output_names=list(output_names),
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        optimize=True,
        verbose=False,
    )


def _shapes_after_cast(model: onnx.ModelProto) -> None:
    """A dynamic-batch graph reads its batch size with ``Shape(frames)``; TensorRT takes a uint8
    input only straight into a Cast (``op_support``), so ``Shape`` reads the cast frames (same
    shape) and those Casts move to the front (they read graph inputs only)."""
    uint8_inputs = {v.name for v in model.graph.input if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8}
    casts = [n for n in model.graph.node if n.op_type == "Cast" and n.input[0] in uint8_inputs]
    cast_of = {n.input[0]: n.output[0] for n in casts}
    shapes = [n for n in model.graph.node if n.op_type == "Shape" and n.input[0] in cast_of]
    if not shapes:
        return
    for node in shapes:
        node.input[0] = cast_of[node.input[0]]
    rest = [n for n in model.graph.node if n not in casts]
    del model.graph.node[:]
    model.graph.node.extend([*casts, *rest])


def _skip_uint8_round_trips(model: onnx.ModelProto) -> None:
    """A uint8 map the graph reads again (``OutputResize`` resizes the heads' uint8 label maps)
    is ``Cast(uint8)`` followed by ``Cast(float)``; TensorRT refuses the uint8 tensor between
    them (``op_support``: uint8 only as a graph input or output). Those casts read the first
    Cast's input instead, and a first Cast left without readers goes. Exact: anomask's uint8
    maps are ids below 256 by construction (``models.heads.checks``), which every wider type
    holds unchanged."""
    outputs = {v.name for v in model.graph.output}
    nodes = list(model.graph.node)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    dropped = []
    for node in nodes:
        if node.op_type != "Cast" or _cast_to(node) != onnx.TensorProto.UINT8 or node.output[0] in outputs:
            continue
        following = readers.get(node.output[0], [])
        if not following or any(n.op_type != "Cast" or _cast_to(n) == onnx.TensorProto.UINT8 for n in following):
            continue
        for reader in following:
            reader.input[0] = node.input[0]
        dropped.append(node)
    if dropped:
        kept = [n for n in nodes if all(n is not d for d in dropped)]
        del model.graph.node[:]
        model.graph.node.extend(kept)


def _cast_to(node: onnx.NodeProto) -> int:
    return next(a.i for a in node.attribute if a.name == "to")


def set_export_info(model: onnx.ModelProto, info: ExportInfo) -> None:
    """Store ``info`` in the model's ``metadata_props`` (replacing an earlier one)."""
    kept = [prop for prop in model.metadata_props if prop.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=info.to_json())
    model.producer_name = "anomask"
    model.producer_version = __version__


def read_export_info(model: onnx.ModelProto, source: str) -> ExportInfo:
    """The anomask metadata of an ONNX model; a clear error for a file from another program."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ExportInfo.from_json(prop.value, source=source)
    producer = model.producer_name or "an unknown program"
    raise AnomaskError(
        f"{source}: no anomask metadata in this ONNX file (produced by {producer}); "
        "export the model with 'anomask export' so the runtime knows its classes and outputs"
    )


def load_onnx(path: str | os.PathLike, load_weights: bool = True) -> onnx.ModelProto:
    """Read an ONNX file, turning protobuf and I/O failures into an AnomaskError."""
    path = Path(path)
    require_file(path, "ONNX file")
    try:
        return onnx.load(str(path), load_external_data=load_weights)
    except Exception as error:  # protobuf raises its own DecodeError family
        raise AnomaskError(f"{path}: not a readable ONNX file ({error})") from error


def read_export_info_file(path: str | os.PathLike) -> ExportInfo:
    return read_export_info(load_onnx(path, load_weights=False), source=str(path))


def save_model_atomic(model: onnx.ModelProto, out_path: Path) -> None:
    with atomic_file(out_path) as temporary:
        onnx.save(model, temporary)
