"""Reduced-precision ONNX graphs for TensorRT 11, which builds only strongly typed networks.

TensorRT 11 removed the builder flags that let TensorRT 10 pick FP16/INT8 kernels on its own
(``BuilderFlag.FP16``, ``BuilderFlag.INT8``, ``int8_calibrator``); precision now has to be
written into the ONNX graph. NVIDIA's documented route is ModelOpt AutoCast (FP16) and
ModelOpt quantization (INT8); neither is a dependency of anomask, so we do the two steps here:

- ``to_mixed_float16``: the *network* part of the deployed graph (nodes the exporter scoped
  under ``network``) computes in float16; frame preprocessing and the fused heads stay in
  float32 (the anomaly score keeps its precision), graph inputs and outputs keep their types.
- ``quantize_int8``: symmetric INT8 Q/DQ nodes (ONNX Runtime's static quantizer, the
  explicit-quantization form TensorRT takes: zero points 0) on the network's convolutions and
  weight matmuls only, with activation ranges from a streaming min/max over frames from an
  image folder (bounded memory).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from anomask.errors import AnomaskError
from anomask.export.export_info import INPUT_FRAMES, INPUT_THRESHOLD

SCOPE_KEY = "pkg.torch.onnx.name_scopes"
NETWORK_SCOPE = "network"

# Inputs that the ONNX spec requires to be float32 whatever the data type.
FLOAT32_INPUTS = {"Resize": {1, 2}}
FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)


def node_scope(node: onnx.NodeProto) -> str:
    """Top-level module of the deployed graph a node came from: preprocess, network or heads."""
    for prop in node.metadata_props:
        if prop.key == SCOPE_KEY:
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            return next((s for s in scopes if s), "")
    return ""


def network_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    nodes = [n for n in model.graph.node if node_scope(n) == NETWORK_SCOPE]
    if not nodes:
        raise AnomaskError(
            "the ONNX graph has no nodes scoped under 'network' (exported by another program "
            "or without the dynamo exporter's scope metadata); re-export it with 'anomask export'"
        )
    return nodes


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if value.type.HasField("tensor_type"):
            types[value.name] = value.type.tensor_type.elem_type
    for init in inferred.graph.initializer:
        types[init.name] = init.data_type
    return types


def to_mixed_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose network nodes compute in float16 (see the module docstring)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    types = _tensor_types(model)
    network_nodes(model)  # an error for graphs without scope metadata
    initializers = {init.name: init for init in graph.initializer}
    new_type: dict[str, int] = dict(types)  # tensor -> type after conversion
    casts: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []

    def cast_to(name: str, to: int) -> str:
        if (name, to) not in casts:
            if name in initializers and to == TensorProto.FLOAT16:
                half = numpy_helper.from_array(to_float16(numpy_helper.to_array(initializers[name])), f"{name}__fp16")
                graph.initializer.append(half)
            else:
                suffix = "fp16" if to == TensorProto.FLOAT16 else "fp32"
                new_nodes.append(
                    helper.make_node("Cast", [name], [f"{name}__{suffix}"], to=to, name=f"cast_{name}_{suffix}")
                )
            casts[(name, to)] = f"{name}__{'fp16' if to == TensorProto.FLOAT16 else 'fp32'}"
        return casts[(name, to)]

    for node in graph.node:
        low = node_scope(node) == NETWORK_SCOPE
        want = TensorProto.FLOAT16 if low else TensorProto.FLOAT
        keep32 = FLOAT32_INPUTS.get(node.op_type, set())
        for index, name in enumerate(node.input):
            have = new_type.get(name)
            if not name or have not in FLOAT_TYPES:
                continue
            need = TensorProto.FLOAT if index in keep32 else want
            if have != need:
                node.input[index] = cast_to(name, need)
        if low:
            _lower_attributes(node)
            for name in node.output:
                if types.get(name) == TensorProto.FLOAT:
                    new_type[name] = TensorProto.FLOAT16
        new_nodes.append(node)
    # Graph outputs keep their declared types.
    for output in graph.output:
        declared = output.type.tensor_type.elem_type
        if new_type.get(output.name) != declared and declared in FLOAT_TYPES:
            inner = f"{output.name}__inner"
            for node in new_nodes:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            new_nodes.append(
                helper.make_node("Cast", [inner], [output.name], to=declared, name=f"cast_{output.name}_out")
            )
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]
    _drop_unused_initializers(graph)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def to_float16(values: np.ndarray) -> np.ndarray:
    """float16 with finite values clamped to float16's range: a -FLT_MAX mask fill (attention
    masks, "lowest" fills) becomes -65504, not -inf (which turns ``-inf * 0`` and softmax rows of
    -inf into NaN); infinities and NaN stay as they are."""
    limit = np.finfo(np.float16).max
    return np.where(np.isfinite(values), np.clip(values, -limit, limit), values).astype(np.float16)


def _lower_attributes(node: onnx.NodeProto) -> None:
    """float32 constants and casts inside a float16 node become float16."""
    for attr in node.attribute:
        if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
            attr.i = TensorProto.FLOAT16
        elif (
            attr.type == onnx.AttributeProto.TENSOR
            and attr.t.data_type == TensorProto.FLOAT
            and node.op_type in ("Constant", "ConstantOfShape")
        ):
            half = numpy_helper.from_array(to_float16(numpy_helper.to_array(attr.t)), attr.t.name)
            attr.t.CopyFrom(half)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


INT8_OP_TYPES = ("Conv", "MatMul", "Gemm")
"""Op types quantized: those TensorRT runs in INT8 from a Q/DQ graph. Everything else
(attention-mask ``Where`` with its -FLT_MAX fill, softmax, the scoring in the heads) keeps float:
ONNX Runtime then neither quantizes nor even calibrates it (its histogram of a -3.4e38 fill
failed with "Too many bins for data range")."""


def quantize_int8(model: onnx.ModelProto, batches: Iterable[np.ndarray], threshold: float = 0.5) -> onnx.ModelProto:
    """Symmetric per-channel INT8 Q/DQ on the network's Conv/MatMul/Gemm nodes with constant
    weights (the fused heads stay in float: their matmuls multiply two activations).

    Activation ranges are the min/max over ``batches`` (ONNX Runtime's MinMax calibrator: the
    graph it runs reduces every calibrated tensor to its min and max, so what it keeps per batch
    is two numbers (per channel) a tensor, not the tensor; its entropy calibrator keeps every
    batch's full tensors until the end). Its ``CalibMaxIntermediateOutputs`` option is not used:
    in onnxruntime 1.32 it drops the collected batches instead of merging them ("No data is
    collected")."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    constants = {init.name for init in model.graph.initializer}
    targets = [
        n.name
        for n in network_nodes(model)
        if n.op_type in INT8_OP_TYPES and len(n.input) > 1 and n.input[1] in constants
    ]
    if not targets:
        raise AnomaskError("no network convolutions or weight matmuls to quantize")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = ({INPUT_FRAMES: b, INPUT_THRESHOLD: np.array(threshold, np.float32)} for b in batches)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="anomask-int8-") as tmp, _quiet():
        src, dst = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        onnx.save(model, src)
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(INT8_OP_TYPES),
            nodes_to_quantize=targets,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            per_channel=True,
            # TensorRT: zero points 0, no int32 bias quantization (DequantizeLinear takes INT8)
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                # Q/DQ on the inputs of the quantized ops only: their outputs, and the
                # tensors other consumers (the heads) read, stay float.
                "OpTypesToExcludeOutputQuantization": list(INT8_OP_TYPES),
                "DedicatedQDQPair": True,
            },
        )
        return onnx.load(str(dst))


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's quantizer prints progress and logs advice on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def save_derived(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Save a derived (fp16 / int8) graph next to its source, atomically."""
    from anomask.export.onnx_export import save_model_atomic

    path = Path(path)
    save_model_atomic(model, path)
    return path
