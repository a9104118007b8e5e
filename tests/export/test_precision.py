"""FP16 and INT8 graphs for TensorRT 11 (strongly typed): types, accuracy, TensorRT check."""

from dataclasses import replace

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, numpy_helper

from anomask.errors import AnomaskError
from anomask.export import tensorrt_builder
from anomask.export.calibration import calibration_batches
from anomask.export.engine_cache import BuildTarget
from anomask.export.export_info import ExportSettings
from anomask.export.graph import build_heads
from anomask.export.onnx_export import example_frames, export_onnx, read_export_info_file
from anomask.export.op_support import tensorrt_problems
from anomask.export.precision import NETWORK_SCOPE, node_scope, quantize_int8, to_float16, to_mixed_float16
from anomask.export.tensorrt_builder import EngineOptions, ensure_engine
from anomask.models import build_model
from anomask.models.config import ModelConfig
from anomask.models.metadata import ModelMetadata
from anomask.training.data.synthetic import render_frame
from anomask.training.data.synthetic.writer import frame_rng

from ..conftest import CLASSES

H100 = BuildTarget("NVIDIA H100", (9, 0), "11.4.0.106")


def _run(model, frames, threshold=0.3):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(None, {"frames": frames, "threshold": np.array(threshold, np.float32)})
    return dict(zip([o.name for o in session.get_outputs()], values))


def test_fp16_graph_keeps_io_types_and_heads_in_float32(standin_onnx):
    path, _, _, settings = standin_onnx
    model = onnx.load(str(path))
    half = to_mixed_float16(model)
    assert [(v.name, v.type.tensor_type.elem_type) for v in half.graph.input] == [
        (v.name, v.type.tensor_type.elem_type) for v in model.graph.input
    ]
    assert [(v.name, v.type.tensor_type.elem_type) for v in half.graph.output] == [
        (v.name, v.type.tensor_type.elem_type) for v in model.graph.output
    ]
    weights = {init.name: init.data_type for init in half.graph.initializer}
    convs = [n for n in half.graph.node if n.op_type == "Conv"]
    assert convs and all(node_scope(n) == NETWORK_SCOPE and weights[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    types = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}
    softmax = [n for n in half.graph.node if n.op_type == "Softmax"]
    assert softmax and all(types[n.output[0]] == TensorProto.FLOAT for n in softmax)  # heads stay float32
    assert tensorrt_problems(half) == []
    frames = example_frames(settings, seed=2)
    want, got = _run(model, frames), _run(half, frames)
    assert np.abs(want["anomaly"] - got["anomaly"]).max() < 1e-2
    assert np.mean(want["semantic"] == got["semantic"]) > 0.98


def test_int8_graph_is_symmetric_qdq_on_network_weights_only(standin_onnx):
    path, _, _, settings = standin_onnx
    model = onnx.load(str(path))
    batches = [example_frames(settings, seed=s) for s in range(3)]
    quantized = quantize_int8(model, batches)
    quantize = [n for n in quantized.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize
    zero_points = [numpy_helper.to_array(i) for i in quantized.graph.initializer if "zero_point" in i.name]
    assert zero_points and all(np.all(z == 0) and z.dtype == np.int8 for z in zero_points)
    dequantized = {n.output[0] for n in quantized.graph.node if n.op_type == "DequantizeLinear"}
    users = [n for n in quantized.graph.node if set(n.input) & dequantized]
    assert {n.op_type for n in users} >= {"Conv", "Gemm"}
    assert all(node_scope(n) == NETWORK_SCOPE for n in users)  # the heads read float tensors only
    assert not any(
        n.op_type == "QuantizeLinear" and n.input[0] in {"pred_logits", "conv2d_1"} for n in quantized.graph.node
    )
    assert tensorrt_problems(quantized) == []
    got = _run(quantized, batches[0])
    assert got["semantic"].shape == (2, 16, 24) and np.isfinite(got["anomaly"]).all()


def test_tensorrt11_builds_from_derived_graphs(standin_onnx, tmp_path, monkeypatch):
    """ensure_engine on TensorRT 11 writes the fp16 / Q-DQ graph (metadata kept) and hands
    that file to the parser; no TensorRT here, so the build step itself is replaced."""
    source, _, _, settings = standin_onnx
    path = tmp_path / "model.onnx"
    path.write_bytes(source.read_bytes())
    parsed = []
    monkeypatch.setattr(
        tensorrt_builder,
        "build_serialized_engine",
        lambda plan, info, options: parsed.append(plan.parser_onnx) or b"engine",
    )
    ensure_engine(path, EngineOptions("fp16"), target=H100, log=lambda _: None)
    assert parsed[-1].name.endswith(".fp16.onnx")
    assert read_export_info_file(parsed[-1]) == read_export_info_file(path)
    with pytest.raises(AnomaskError, match="INT8 needs calibration images"):
        ensure_engine(path, EngineOptions("int8"), target=H100, log=lambda _: None)
    images = tmp_path / "calib"
    images.mkdir()
    for i, frame in enumerate(example_frames(settings, seed=4)):
        cv2.imwrite(str(images / f"{i}.png"), frame)
    ensure_engine(path, EngineOptions("int8", calib_images=images), target=H100, log=lambda _: None)
    assert parsed[-1].name.endswith(".int8-qdq.onnx")
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(parsed[-1])).graph.node)


@pytest.fixture(scope="module")
def small_preset(tmp_path_factory):
    """The real small preset (``ModelConfig.small``, 3 classes, random weights of seed 0) with
    the ResNet-18 backbone, at 64x128. An untrained network labels every pixel alike; its class
    and mask embeddings are scaled x8 so the label map varies and agreement can fail. An
    untrained EfficientNet-Lite0 (the preset's default) has near-tied labels on most pixels, so
    agreement there says nothing: ``anomask bench int8`` measures it on trained checkpoints
    (docs/export.md), and tests/bench/test_int8.py checks that backbone's Q/DQ graph."""
    torch.manual_seed(0)
    architecture = replace(ModelConfig.small(num_classes=3), backbone="resnet18", pretrained_backbone=False)
    metadata = ModelMetadata(classes=CLASSES, architecture=architecture)
    network = build_model(metadata.architecture).eval()
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "class_embed" in name or "mask_embed" in name:
                parameter.mul_(8.0)
    settings = ExportSettings(input_size=(64, 128), network_size=(64, 128), output_size=(32, 64), batch=1)
    path = tmp_path_factory.mktemp("small_preset") / "small.onnx"
    export_onnx(network, build_heads(metadata, settings), metadata, settings, path)
    return onnx.load(str(path)), settings


def _synthetic_frames(folder, count, first, settings):
    """Frames of the synthetic default's generator, written as images (BGR files, as cv2 reads)."""
    folder.mkdir()
    for index in range(first, first + count):
        image = render_frame(frame_rng(0, "train", index), *settings.input_size).image
        cv2.imwrite(str(folder / f"{index:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.slow
def test_int8_of_the_small_preset_runs_agrees_and_passes_the_tensorrt_check(small_preset, tmp_path):
    model, settings = small_preset
    calib = _synthetic_frames(tmp_path / "calib", 8, 0, settings)
    quantized = quantize_int8(model, calibration_batches(calib, settings))
    assert tensorrt_problems(quantized) == []
    dequantized = {n.output[0] for n in quantized.graph.node if n.op_type == "DequantizeLinear"}
    users = [n for n in quantized.graph.node if set(n.input) & dequantized]
    assert sum(n.op_type == "Conv" for n in users) >= 20  # the ResNet-18 backbone and the pixel decoder
    # Q/DQ only where a Conv/MatMul/Gemm reads: every DQ output has one as a reader (a residual
    # Add beside a MatMul reads the same DQ output); masks, softmax, heads and scores read float.
    int8_ops = {"Conv", "MatMul", "Gemm"}
    assert all(any(n.op_type in int8_ops and d in n.input for n in users) for d in dequantized)
    assert all(node_scope(n) == NETWORK_SCOPE for n in users)
    assert not {n.op_type for n in users} & {"Where", "Softmax", "Sigmoid", "ReduceMax", "ArgMax"}
    held_out = np.concatenate(
        list(calibration_batches(_synthetic_frames(tmp_path / "test", 3, 100, settings), settings))
    )
    agreement = []
    for frame in held_out:
        want, got = _run(model, frame[None]), _run(quantized, frame[None])
        assert len(np.unique(want["semantic"])) > 1
        agreement.append(np.mean(want["semantic"] == got["semantic"]))
    assert np.mean(agreement) >= 0.95, agreement


def test_float16_conversion_clamps_finite_values_instead_of_overflowing():
    values = np.array([-np.finfo(np.float32).max, -1e6, 1.5, 7e4, np.inf, -np.inf], np.float32)
    half = to_float16(values)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, np.array([-65504, -65504, 1.5, 65504, np.inf, -np.inf], np.float16))
