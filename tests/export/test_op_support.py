"""The TensorRT op-support check fails with the offending op's name."""

import onnx
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
    assert any("DequantizeLinear" in p and "input b is INT32" in p for p in problems)
    assert any("QuantizeLinear" in p and "zero point must be 0" in p for p in problems)


def _frames_graph(transpose_first: bool):
    """The frame layout change of the deployed graph before issue 15: uint8 NHWC frames,
    transposed to NCHW, then cast to float (or the fixed order: cast, then transpose)."""
    perm = helper.make_node("Transpose", ["t_in"], ["t_out"], perm=[0, 3, 1, 2])
    cast = helper.make_node("Cast", ["c_in"], ["c_out"], to=TensorProto.FLOAT)
    if transpose_first:
        perm.input[0], perm.output[0], cast.input[0], cast.output[0] = "frames", "nchw", "nchw", "images"
    else:
        cast.input[0], cast.output[0], perm.input[0], perm.output[0] = "frames", "floats", "floats", "images"
    nodes = [perm, cast] if transpose_first else [cast, perm]
    return _model(nodes, [_vi("frames", [1, 4, 6, 3], TensorProto.UINT8)], [_vi("images", [1, 3, 4, 6])])


def test_uint8_transpose_before_the_cast_is_refused():
    problems = tensorrt_problems(_frames_graph(transpose_first=True))
    assert any("Transpose node" in p and "reads UINT8 graph input frames" in p for p in problems), problems
    assert any("UINT8 intermediate nchw" in p and "legalUINT8" in p for p in problems), problems
    assert tensorrt_problems(_frames_graph(transpose_first=False)) == []


def _open_set_graph(fill_in_uint8: bool):
    """``open_set = where(score > threshold, 254, semantic)`` with semantic a uint8 graph
    output: filled in uint8 (before issue 15) or in float with the uint8 cast last."""
    nodes = [
        helper.make_node("ArgMax", ["scores"], ["ids"], axis=1, keepdims=0),
        helper.make_node("Cast", ["ids"], ["semantic"], to=TensorProto.UINT8),
        helper.make_node("Greater", ["anomaly", "threshold"], ["unknown"]),
    ]
    if fill_in_uint8:
        fill = helper.make_tensor("fill", TensorProto.UINT8, [], [254])
        nodes.append(helper.make_node("Where", ["unknown", "fill", "semantic"], ["open_set"]))
    else:
        fill = helper.make_tensor("fill", TensorProto.FLOAT, [], [254.0])
        nodes += [
            helper.make_node("Cast", ["ids"], ["ids_float"], to=TensorProto.FLOAT),
            helper.make_node("Where", ["unknown", "fill", "ids_float"], ["open_float"]),
            helper.make_node("Cast", ["open_float"], ["open_set"], to=TensorProto.UINT8),
        ]
    inputs = [_vi("scores", [1, 3, 4, 6]), _vi("anomaly", [1, 4, 6]), _vi("threshold", [])]
    outputs = [_vi("semantic", [1, 4, 6], TensorProto.UINT8), _vi("open_set", [1, 4, 6], TensorProto.UINT8)]
    return _model(nodes, inputs, outputs, initializers=[fill])


def test_uint8_where_is_refused():
    problems = tensorrt_problems(_open_set_graph(fill_in_uint8=True))
    assert any("Where node" in p and "reads UINT8 tensor semantic" in p for p in problems), problems
    assert any("UINT8 output open_set: a UINT8 graph output must come from a Cast" in p for p in problems)
    assert tensorrt_problems(_open_set_graph(fill_in_uint8=False)) == []


def test_bool_int64_and_double_follow_the_type_column():
    nodes = [
        helper.make_node("Greater", ["x", "y"], ["b"]),
        helper.make_node("Add", ["b", "b"], ["s"]),  # Add takes no BOOL
        helper.make_node("MatMul", ["i", "i"], ["m"]),  # MatMul floats only
        helper.make_node("Where", ["b", "i", "i"], ["w"]),  # INT64 data, BOOL condition: fine
        helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
    ]
    model = _model(
        nodes,
        [_vi("x", [2, 2]), _vi("y", [2, 2]), _vi("i", [2, 2], TensorProto.INT64)],
        [_vi("s", [2, 2], TensorProto.BOOL), _vi("m", [2, 2], TensorProto.INT64), _vi("w", [2, 2], TensorProto.INT64)]
        + [_vi("d", [2, 2], TensorProto.DOUBLE)],
    )
    problems = tensorrt_problems(model)
    assert any(p.startswith("Add node") and "input b is BOOL" in p for p in problems), problems
    assert any(p.startswith("MatMul node") and "input i is INT64" in p for p in problems), problems
    assert any("tensor d is DOUBLE" in p for p in problems), problems
    assert not any("Where" in p or "Greater" in p for p in problems), problems


def test_export_check_of_an_onnx_file_exits_2_listing_the_problems(tmp_path, capsys):
    from anomask.cli import main

    onnx.save(_frames_graph(transpose_first=True), str(tmp_path / "old.onnx"))
    onnx.save(_frames_graph(transpose_first=False), str(tmp_path / "fixed.onnx"))
    assert main(["export", str(tmp_path / "old.onnx"), "--check"]) == 2
    err = capsys.readouterr().err
    assert "old.onnx: not buildable by TensorRT" in err and "reads UINT8 graph input frames" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["export", str(tmp_path / "fixed.onnx"), "--check"]) == 0
    assert "fixed.onnx: passes the TensorRT parser check" in capsys.readouterr().out
