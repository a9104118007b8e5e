"""The TensorRT op-support check fails with the offending op's name."""

import pytest
from onnx import TensorProto, helper

from anomask.errors import AnomaskError
from anomask.export.op_support import TARGETS, check_tensorrt_support, tensorrt_problems


def _model(nodes, inputs, outputs, opset=18, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def test_supported_graph_passes():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2, 3])], [_vi("y", [2, 3])])
    assert tensorrt_problems(model) == []


def test_unsupported_op_is_named():
    # Det: "N" in onnx-tensorrt's operator support matrix.
    model = _model([helper.make_node("Det", ["x"], ["y"])], [_vi("x", [3, 3])], [_vi("y", [])])
    with pytest.raises(
        AnomaskError, match=r"graph.onnx: not buildable by TensorRT: operator\(s\) Det not supported by tensorrt-10"
    ):
        check_tensorrt_support(model, source="graph.onnx")


def test_op_added_late_in_10x_fails_only_the_10x_target():
    assert "RMSNormalization" in TARGETS["tensorrt-11"].operators
    assert "RMSNormalization" not in TARGETS["tensorrt-10"].operators
    assert "Swish" not in TARGETS["tensorrt-10"].operators and "Swish" in TARGETS["tensorrt-11"].operators


def test_custom_domain_and_data_dependent_shapes_are_refused():
    custom = helper.make_node("FusedThing", ["x"], ["y"], domain="com.example")
    model = _model([custom], [_vi("x", [2])], [_vi("y", [2])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    assert any("com.example::FusedThing" in p for p in tensorrt_problems(model))
    nonzero = _model(
        [helper.make_node("NonZero", ["x"], ["y"])], [_vi("x", [4])], [_vi("y", [1, "n"], TensorProto.INT64)]
    )
    problems = tensorrt_problems(nonzero)
    assert any("NonZero have data-dependent output shapes" in p for p in problems)
    assert any("output y has a non-static dimension 1" in p for p in problems)


def test_data_dependent_intermediate_shape_is_found():
    # Reshape to a shape read from data: shape inference cannot resolve it.
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("ReduceSum", ["r"], ["y"], keepdims=0)]
    model = _model(nodes, [_vi("x", [4]), _vi("s", [2], TensorProto.INT64)], [_vi("y", [])])
    assert any("from Reshape node" in p and "data-dependent" in p for p in tensorrt_problems(model))


def test_dynamic_batch_output_is_allowed_but_other_symbols_are_not():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["batch", 3])], [_vi("y", ["batch", 3])])
    assert tensorrt_problems(model) == []
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2, "width"])], [_vi("y", [2, "width"])])
    assert any("non-static dimension 1" in p for p in tensorrt_problems(model))


def test_resize_restrictions_and_opset():
    resize = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic")
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    model = _model([resize], [_vi("x", [1, 1, 2, 2])], [_vi("y", [1, 1, 4, 4])], initializers=[scales])
    assert any("mode 'cubic' unsupported" in p for p in tensorrt_problems(model))
    high = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])], opset=21)
    assert tensorrt_problems(high) == ["opset 21 is above tensorrt-10's maximum 20"]


def test_quantization_nodes_must_be_int8_and_symmetric():
    bias = helper.make_tensor("b", TensorProto.INT32, [2], [1, 2])
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [3])
    nodes = [
        helper.make_node("DequantizeLinear", ["b", "s"], ["y"]),
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
    ]
    model = _model(
        nodes, [_vi("x", [2])], [_vi("y", [2]), _vi("q", [2], TensorProto.INT8)], initializers=[bias, scale, zero]
    )
    problems = tensorrt_problems(model)
    assert any("dequantizes INT32" in p for p in problems)
    assert any("QuantizeLinear" in p and "zero point must be 0" in p for p in problems)
