"""The entrypoint's first-boot step, `anomask export MODEL.onnx --build-only`, goes through
the same engine-cache decision as `anomask export --engine` (engine_cache.decide): built
once, then found. TensorRT itself is replaced (not installable here)."""

import onnx

from anomask.cli import main
from anomask.export import tensorrt_builder
from anomask.export.engine_cache import BuildTarget, EngineKey, engine_path, file_sha256
from anomask.export.export_info import ExportInfo, ExportSettings
from anomask.export.onnx_export import set_export_info
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata

ORIN = BuildTarget("Orin", (8, 7), "10.3.0")


def _onnx(path):
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph)
    metadata = ModelMetadata(
        classes=(ClassInfo("road", False, (1, 2, 3)),), architecture=ModelConfig.small(num_classes=1)
    )
    settings = ExportSettings(input_size=(8, 8), network_size=(8, 8), output_size=(8, 8))
    set_export_info(model, ExportInfo(metadata, settings, ("semantic", "anomaly", "open_set")))
    onnx.save(model, str(path))
    return path


def test_build_only_builds_once_then_reuses(tmp_path, monkeypatch, capsys):
    model = _onnx(tmp_path / "model.onnx")
    builds = []
    monkeypatch.setattr(tensorrt_builder, "detect_target", lambda: ORIN)
    monkeypatch.setattr(
        tensorrt_builder, "build_serialized_engine", lambda plan, info, options: builds.append(plan) or b"plan"
    )
    expected = engine_path(model, EngineKey(ORIN, "int8", file_sha256(model), 0))
    calib = tmp_path / "calib"
    calib.mkdir()
    args = [
        "export",
        str(model),
        "--build-only",
        "--precision",
        "int8",
        "--dla-core",
        "0",
        "--calib-images",
        str(calib),
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(expected) and "no cached engine" in err
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(expected) and "cached engine matches" in err
    assert len(builds) == 1 and builds[0].builder_flags == ("INT8", "FP16") and builds[0].dla_core == 0


def test_build_only_wants_an_onnx_file(tmp_path, capsys):
    assert main(["export", str(tmp_path / "model.safetensors"), "--build-only"]) == 2
    assert "--build-only takes an exported .onnx file" in capsys.readouterr().err
