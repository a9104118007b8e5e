"""Can TensorRT's ONNX parser take this graph? Checked here, without TensorRT.

Source of the operator lists: the ONNX-TensorRT operator support matrix,
``docs/operators.md`` in github.com/onnx/onnx-tensorrt, revision for TensorRT 10.15
("supports operators in the inclusive range of opset 9 to opset 24"; every row marked
``Y`` below), the TensorRT 10.0 revision of the same file ("opset 9 to opset 20"), the
ONNX-TensorRT changelog (operators added during 10.x) and the TensorRT 11.x ONNX opset guide
(maximum opset 25; 11.0 added ``Swish``). Two targets: ``tensorrt-10`` is what every 10.x
parser takes (JetPack 6 ships 10.3), ``tensorrt-11`` the current release line.

Checked beyond op names: domains (only the standard ONNX domain), opset, the documented
restrictions our graphs can hit (``Resize`` modes, ``TopK``), and shapes: no op whose output
shape depends on the data, every graph output and intermediate static except the batch axis.

Checked beyond op names, too: the element type of every tensor after shape inference (the
first real GPU build failed on types, not ops):

- each op's data tensors must have a type listed for it in the "Supported Types" column of
  the same matrix (TensorRT 10.1 revision, ``docs/operators.md``: e.g. ``Where`` takes FP32,
  FP16, BF16, INT32, INT64, BOOL; ``Equal`` no BOOL; ``MatMul``/``Conv`` floats only; ``And``,
  ``Or``, ``Xor``, ``Not`` BOOL only). Index, shape and condition inputs whose ONNX type is
  not a float type (``Gather`` indices, ``Reshape`` shape, ``Where`` condition) are not data
  tensors. INT64 is taken where the column lists it (TensorRT 10 added native INT64; the same
  rule is used for both targets).
- UINT8 "is only supported as network input or output tensor types" (same page):
  onnx-tensorrt's ``ModelImporter.cpp`` refuses any node output of type UINT8 that is not a
  graph output (its ``legalUINT8`` assertion, "TensorRT does not support UINT8 types for
  intermediate tensors"); a UINT8 graph input must go straight into a ``Cast`` ("All UINT8
  inputs must directly feed into a cast layer ... even just data-movement ops like reshape /
  transpose", NVIDIA/TensorRT#3985); a UINT8 graph output must come from a ``Cast`` (builder
  error "Network-level output tensor ... has datatype UInt8 but is not produced by an
  IIdentityLayer or ICastLayer", NVIDIA/TensorRT#4278).
- DOUBLE is refused anywhere (the parser only casts it down to FLOAT, clamping to +-FLT_MAX).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import onnx
import onnx.inliner
import onnx.numpy_helper
import onnx.shape_inference

from anomask.errors import AnomaskError

# Rows marked Y in onnx-tensorrt docs/operators.md (TensorRT 10.15 revision).
SUPPORTED_10_15 = frozenset(
    """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool
BatchNormalization BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant
ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace DequantizeLinear
Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements
GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax
Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence
RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu Tile
TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split()
)

ADDED_DURING_10X = frozenset({"Attention", "RotaryEmbedding", "RMSNormalization", "TensorScatter", "STFT"})
"""In the 10.15 matrix but added after 10.0 (changelog: STFT 10.5, Attention 10.14, the rest
10.15); a graph for every 10.x parser must not use them."""

DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "Unique", "NonMaxSuppression", "Compress"})
"""Ops whose output shape depends on the input values: allowed by some parsers, refused here
(static buffers, CUDA graphs and DLA need fixed shapes)."""

RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)


FLOATS = ("FP32", "FP16", "BF16")
NUMBERS = (*FLOATS, "INT32", "INT64")
ANY_TYPE = (*NUMBERS, "BOOL")
_TYPE_ROWS = {
    ANY_TYPE: """Concat Constant Expand EyeLike Flatten Gather GatherElements GatherND Identity If Loop
        OneHot Reshape ReverseSequence Shape Size Slice Split Squeeze Tile Transpose Trilu Unsqueeze
        Where ConstantOfShape""",
    NUMBERS: """Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN Less
        LessOrEqual Max Min Mod Mul Neg Pad Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
        ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Scatter
        ScatterElements ScatterND Shrink Sign SpaceToDepth Sub Sum TopK""",
    (*NUMBERS, "INT8"): "Gelu",
    (*NUMBERS, "FP8"): "Mean",
    FLOATS: """Acos Acosh Asin Asinh Atan Atanh AveragePool BatchNormalization Ceil Celu Clip Conv
        ConvTranspose Cos Cosh CumSum Dropout Einsum Elu Erf Exp Floor GRU Gemm GlobalAveragePool
        GlobalLpPool GlobalMaxPool GroupNormalization HardSigmoid HardSwish Hardmax ImageScaler
        InstanceNormalization IsInf LRN LSTM LayerNormalization LeakyRelu Log LogSoftmax
        LpNormalization LpPool MatMul MaxPool MeanVarianceNormalization PRelu ParametricSoftplus Pow
        QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform RandomUniformLike Reciprocal
        Resize Round ScaledTanh Scan Selu Sigmoid Sin Sinh Softmax Softplus Softsign Sqrt Tan Tanh
        ThresholdedRelu Upsample""",
    ("FP32", "FP16"): "DeformConv GridSample Mish NonMaxSuppression NonZero RoiAlign",
    ("INT8", "FP8", "INT4"): "DequantizeLinear",
    (*ANY_TYPE, "UINT8"): "Cast CastLike",
    ("BOOL",): "And Not Or Xor",
}
OP_TYPES: dict[str, frozenset[str]] = {op: frozenset(types) for types, ops in _TYPE_ROWS.items() for op in ops.split()}
"""The data types each op takes: the "Supported Types" column of onnx-tensorrt
``docs/operators.md`` (TensorRT 10.1 revision; ConstantOfShape's "INF64" read as INT64).
Ops added later have no row and get no type check."""

_TYPE_NAMES = {"FLOAT": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16", "FLOAT8E4M3FN": "FP8"}
UINT8_CASTS = frozenset({"Cast", "CastLike"})


@dataclass(frozen=True)
class TensorRTTarget:
    name: str
    operators: frozenset[str]
    max_opset: int
    source: str


TARGETS: dict[str, TensorRTTarget] = {
    "tensorrt-10": TensorRTTarget(
        "tensorrt-10",
        SUPPORTED_10_15 - ADDED_DURING_10X,
        20,
        "onnx-tensorrt docs/operators.md (TensorRT 10.0: opset 9-20; 10.15 matrix minus ops added during 10.x)",
    ),
    "tensorrt-11": TensorRTTarget(
        "tensorrt-11",
        SUPPORTED_10_15 | {"Swish"},
        25,
        "onnx-tensorrt docs/operators.md (10.15 matrix) + TensorRT 11 opset guide (opset <= 25, Swish added in 11.0)",
    ),
}


def check_tensorrt_support(
    model: onnx.ModelProto, source: str = "model", targets: tuple[str, ...] = tuple(TARGETS)
) -> None:
    """Raise AnomaskError naming every problem TensorRT's parser would have with ``model``."""
    problems = tensorrt_problems(model, targets)
    if problems:
        raise AnomaskError(f"{source}: not buildable by TensorRT: " + "; ".join(problems))


def check_tensorrt_file(path: str | os.PathLike, targets: tuple[str, ...] = tuple(TARGETS)) -> str:
    """``anomask export MODEL.onnx --check``: raise AnomaskError listing every problem, else say it passed."""
    from anomask.export.onnx_export import load_onnx

    check_tensorrt_support(load_onnx(path), source=str(path), targets=targets)
    return f"{path}: passes the TensorRT parser check ({', '.join(targets)}: operators, element types, shapes)"


def tensorrt_problems(model: onnx.ModelProto, targets: tuple[str, ...] = tuple(TARGETS)) -> list[str]:
    """Every reason TensorRT's ONNX parser (for each of ``targets``) would refuse ``model``."""
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    problems: list[str] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    nodes = list(_all_nodes(model.graph))
    for target_name in targets:
        target = TARGETS[target_name]
        if opset is not None and opset > target.max_opset:
            problems.append(f"opset {opset} is above {target.name}'s maximum {target.max_opset}")
        unsupported = sorted(
            {n.op_type for n in nodes if n.domain in ("", "ai.onnx") and n.op_type not in target.operators}
        )
        if unsupported:
            problems.append(f"operator(s) {', '.join(unsupported)} not supported by {target.name} [{target.source}]")
    foreign = sorted({f"{n.domain}::{n.op_type}" for n in nodes if n.domain not in ("", "ai.onnx")})
    if foreign:
        problems.append(f"operator(s) {', '.join(foreign)} from non-standard domains (no TensorRT importer)")
    dynamic = sorted({n.op_type for n in nodes if n.op_type in DATA_DEPENDENT_SHAPE_OPS})
    if dynamic:
        problems.append(f"operator(s) {', '.join(dynamic)} have data-dependent output shapes")
    problems.extend(_restriction_problems(nodes, {init.name: init for init in model.graph.initializer}))
    inferred, problem = _infer_with_fixed_batch(model)
    if inferred is None:
        return problems + [problem]
    problems.extend(_shape_problems(model, inferred))
    problems.extend(_type_problems(inferred, opset or 1))
    return problems


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub)


def _attr(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _restriction_problems(nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto]) -> list[str]:
    problems = []
    for node in nodes:
        label = f"{node.op_type} node {node.name or '(unnamed)'}"
        if node.op_type == "Resize":
            mode = _attr(node, "mode", "nearest")
            ctm = _attr(node, "coordinate_transformation_mode", "half_pixel")
            if mode not in RESIZE_MODES:
                problems.append(f"{label}: mode {mode!r} unsupported (TensorRT: nearest, linear)")
            if ctm not in RESIZE_COORDINATE_MODES:
                problems.append(f"{label}: coordinate_transformation_mode {ctm!r} unsupported")
            if _attr(node, "antialias", 0):
                problems.append(f"{label}: antialiasing unsupported")
        elif node.op_type == "TopK" and not _attr(node, "sorted", 1):
            problems.append(f"{label}: sorted=0 unsupported")
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = initializers.get(node.input[2]) if len(node.input) > 2 else None
            if zero_point is not None and onnx.numpy_helper.to_array(zero_point).any():
                problems.append(f"{label}: zero point must be 0")
    return problems


def _batch_symbols(model: onnx.ModelProto) -> set[str]:
    return {
        value.type.tensor_type.shape.dim[0].dim_param
        for value in model.graph.input
        if value.type.tensor_type.shape.dim and value.type.tensor_type.shape.dim[0].dim_param
    }


def _infer_with_fixed_batch(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, str]:
    """Shape and type inference with a symbolic batch axis fixed to 2; (None, why) on failure."""
    batch_symbols = _batch_symbols(model)
    fixed = onnx.ModelProto.FromString(model.SerializeToString())
    for value in fixed.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param in batch_symbols:
            dims[0].dim_value = 2
    del fixed.graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True), ""
    except Exception as error:  # onnx raises InferenceError and friends
        return None, f"shape inference failed ({str(error).splitlines()[0]})"


def _shape_problems(model: onnx.ModelProto, inferred: onnx.ModelProto) -> list[str]:
    """Graph outputs must be static except a batch axis taken from the inputs' batch symbol;
    with the batch fixed, every intermediate shape must resolve to numbers (a dimension that
    stays unknown depends on data)."""
    problems = []
    batch_symbols = _batch_symbols(model)
    for value in model.graph.output:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") and not (axis == 0 and dim.dim_param in batch_symbols):
                problems.append(f"output {value.name} has a non-static dimension {axis} ({dim.dim_param or '?'})")
    for value in inferred.graph.value_info:
        if not value.type.HasField("tensor_type"):
            continue
        if not value.type.tensor_type.HasField("shape"):
            problems.append(f"intermediate {value.name} has an unknown rank")
            continue
        unknown = [axis for axis, dim in enumerate(value.type.tensor_type.shape.dim) if not dim.HasField("dim_value")]
        if unknown:
            producer = next((n for n in inferred.graph.node if value.name in n.output), None)
            origin = f" (from {producer.op_type} node {producer.name})" if producer is not None else ""
            problems.append(f"intermediate {value.name}{origin} has a data-dependent dimension {unknown[0]}")
    return problems


def _type_name(elem_type: int) -> str:
    name = onnx.TensorProto.DataType.Name(elem_type)
    return _TYPE_NAMES.get(name, name)


def _tensor_types(inferred: onnx.ModelProto) -> dict[str, str]:
    graph = inferred.graph
    types = {
        value.name: _type_name(value.type.tensor_type.elem_type)
        for value in (*graph.input, *graph.value_info, *graph.output)
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type
    }
    types.update((init.name, _type_name(init.data_type)) for init in graph.initializer)
    return types


def _data_slots(node: onnx.NodeProto, opset: int) -> tuple[list[int], list[int]]:
    """Indices of the node's inputs and outputs that carry its data type: those whose ONNX type
    may be float (a type constraint allowing ``tensor(float)``); index, shape and condition
    tensors are not. DequantizeLinear: only its quantized input."""
    if node.op_type == "DequantizeLinear":
        return [0], []
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return [], []
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def slots(formals, count: int) -> list[int]:
        found = []
        for index in range(count):
            formal = formals[min(index, len(formals) - 1)] if formals else None
            if formal is not None and "tensor(float)" in allowed.get(formal.type_str, {formal.type_str}):
                found.append(index)
        return found

    return slots(schema.inputs, len(node.input)), slots(schema.outputs, len(node.output))


def _type_problems(inferred: onnx.ModelProto, opset: int) -> list[str]:
    """The element-type rules of the module docstring, on a shape-inferred model."""
    graph = inferred.graph
    types = _tensor_types(inferred)
    graph_inputs = {v.name for v in graph.input}
    graph_outputs = {v.name for v in graph.output}
    problems = [f"tensor {name} is DOUBLE (TensorRT has no FP64 tensors)" for name, t in types.items() if t == "DOUBLE"]
    for node in graph.node:
        label = f"{node.op_type} node {node.name or '(unnamed)'}"
        for name in node.input:
            if name and types.get(name) == "UINT8" and node.op_type not in UINT8_CASTS:
                origin = "graph input" if name in graph_inputs else "tensor"
                problems.append(
                    f"{label} reads UINT8 {origin} {name}: TensorRT takes UINT8 only straight into a Cast "
                    "(NVIDIA/TensorRT#3985)"
                )
        for name in node.output:
            if not name or types.get(name) != "UINT8":
                continue
            if name not in graph_outputs:
                problems.append(
                    f"{label} makes UINT8 intermediate {name}: TensorRT takes UINT8 only as a graph input "
                    "or output (onnx-tensorrt legalUINT8)"
                )
            elif node.op_type not in UINT8_CASTS:
                problems.append(
                    f"{label} makes UINT8 output {name}: a UINT8 graph output must come from a Cast "
                    "(NVIDIA/TensorRT#4278)"
                )
        if node.op_type not in OP_TYPES or node.domain not in ("", "ai.onnx"):
            continue
        accepted = OP_TYPES[node.op_type]
        inputs, outputs = _data_slots(node, opset)
        for role, names in (("input", [node.input[i] for i in inputs]), ("output", [node.output[i] for i in outputs])):
            for name in names:
                kind = types.get(name)
                if name and kind not in (None, "UINT8", "DOUBLE") and kind not in accepted:
                    problems.append(
                        f"{label}: {role} {name} is {kind} (TensorRT {node.op_type}: {', '.join(sorted(accepted))})"
                    )
    return problems
