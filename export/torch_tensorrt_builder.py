"""Torch-TensorRT path: compile the checkpoint's ``DeployGraph`` straight from PyTorch.

An alternative to ONNX -> TensorRT for graphs the ONNX parser would refuse: Torch-TensorRT
converts what it can and leaves the rest to PyTorch. Compiled with ``ir="dynamo"`` and
explicit typing (the only mode with TensorRT 11, which has no weak typing; the default since
Torch-TensorRT 2.10, and 2.14 no longer takes a ``use_explicit_typing`` keyword, which its
``**kwargs`` would swallow unread, so none is passed); FP16 is
expressed in the graph itself (``DeployGraph(network_half=True)``: the network in float16,
preprocessing and heads in float32), like the ONNX path. The result is saved as an
ExportedProgram (``torch_tensorrt.save``), loadable with ``torch.export.load`` on the same
GPU and TensorRT version; ``open_runtime`` does not serve it (it carries no anomask metadata):
the runtimes serve the ONNX engine, the ONNX graph or the checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from anomask.errors import AnomaskError
from anomask.export.export_info import GPU_INSTALL, ExportSettings
from anomask.export.graph import DeployGraph, build_heads, threshold_tensor
from anomask.export.onnx_export import example_frames
from anomask.files import atomic_file


def compile_torch_tensorrt(
    checkpoint: str | os.PathLike,
    settings: ExportSettings,
    out_path: str | os.PathLike,
    precision: str = "fp16",
    workspace_gib: float = 4.0,
) -> Path:
    """Compile ``checkpoint`` for this GPU and save it to ``out_path`` (``.ep``)."""
    try:
        import torch_tensorrt
    except ImportError as error:
        raise AnomaskError(f"Torch-TensorRT is not installed: {GPU_INSTALL}") from error
    if precision not in ("fp16", "fp32"):
        raise AnomaskError(
            f"the Torch-TensorRT path builds fp16 or fp32, not {precision!r} (INT8: use the ONNX engine path)"
        )
    if not torch.cuda.is_available():
        raise AnomaskError("Torch-TensorRT needs a CUDA device")
    from anomask.models.checkpoint import load_checkpoint

    network, metadata = load_checkpoint(checkpoint, map_location="cuda")
    graph = (
        DeployGraph(network, build_heads(metadata, settings), metadata, settings, network_half=precision == "fp16")
        .cuda()
        .eval()
    )
    inputs = (torch.from_numpy(example_frames(settings)).cuda(), threshold_tensor(0.5).cuda())
    compiled = torch_tensorrt.compile(
        graph,
        ir="dynamo",
        arg_inputs=list(inputs),
        workspace_size=int(workspace_gib * (1 << 30)),
        min_block_size=1,
    )
    out_path = Path(out_path)
    with atomic_file(out_path) as temporary:
        torch_tensorrt.save(compiled, temporary, output_format="exported_program", arg_inputs=list(inputs))
    return out_path
