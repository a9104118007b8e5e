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
"""

from __future__ import annotations

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
    problems.extend(_shape_problems(model))
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


QUANTIZED_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.INT4}


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
            if (
                node.op_type == "DequantizeLinear"
                and node.input[0] in initializers
                and initializers[node.input[0]].data_type not in QUANTIZED_TYPES
            ):
                name = onnx.TensorProto.DataType.Name(initializers[node.input[0]].data_type)
                problems.append(f"{label}: dequantizes {name} (TensorRT: INT8, FP8, INT4)")
            zero_point = initializers.get(node.input[2]) if len(node.input) > 2 else None
            if zero_point is not None and onnx.numpy_helper.to_array(zero_point).any():
                problems.append(f"{label}: zero point must be 0")
    return problems


def _shape_problems(model: onnx.ModelProto) -> list[str]:
    """Graph outputs must be static except a batch axis taken from the inputs' batch symbol;
    with the batch fixed, every intermediate shape must resolve to numbers (a dimension that
    stays unknown depends on data)."""
    problems = []
    batch_symbols = {
        value.type.tensor_type.shape.dim[0].dim_param
        for value in model.graph.input
        if value.type.tensor_type.shape.dim and value.type.tensor_type.shape.dim[0].dim_param
    }
    for value in model.graph.output:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") and not (axis == 0 and dim.dim_param in batch_symbols):
                problems.append(f"output {value.name} has a non-static dimension {axis} ({dim.dim_param or '?'})")
    fixed = onnx.ModelProto.FromString(model.SerializeToString())
    for value in fixed.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param in batch_symbols:
            dims[0].dim_value = 2
    del fixed.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    except Exception as error:  # onnx raises InferenceError and friends
        return problems + [f"shape inference failed ({str(error).splitlines()[0]})"]
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
