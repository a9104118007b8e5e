"""Engine cache: names, the load-or-rebuild decision (fake engines and sidecars), and the
build flow around TensorRT (the TensorRT calls themselves are replaced: no TensorRT here)."""

from dataclasses import replace

import onnx
import pytest

from anomask.errors import AnomaskError
from anomask.export import tensorrt_builder
from anomask.export.engine_cache import (
    BuildTarget,
    EngineKey,
    decide,
    engine_path,
    file_sha256,
    read_sidecar,
    sidecar_path,
    slug,
    stale_engines,
    write_engine,
)
from anomask.export.export_info import ExportInfo, ExportSettings
from anomask.export.onnx_export import set_export_info
from anomask.export.runtime_tensorrt import open_engine_info
from anomask.export.tensorrt_builder import EngineOptions, ensure_engine, plan_build

from ..conftest import tiny_metadata

ORIN = BuildTarget("Orin", (8, 7), "10.3.0")
H100 = BuildTarget("NVIDIA H100 80GB HBM3", (9, 0), "11.4.0.106")


@pytest.fixture
def onnx_file(tmp_path):
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph)
    settings = ExportSettings(input_size=(8, 8), network_size=(8, 8), output_size=(8, 8), batch=2)
    info = ExportInfo(tiny_metadata(), settings, ("semantic", "anomaly", "open_set"))
    set_export_info(model, info)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path, info


def _key(path, target=ORIN, precision="fp16", dla=None):
    return EngineKey(target, precision, file_sha256(path), dla)


def test_engine_name_carries_gpu_capability_version_precision_and_hash(onnx_file):
    path, _ = onnx_file
    key = _key(path, H100, "int8")
    name = engine_path(path, key).name
    assert name == f"model.nvidia-h100-80gb-hbm3-sm90.trt11.4.0.106.int8.{key.onnx_sha256[:12]}.engine"
    assert engine_path(path, _key(path, ORIN, dla=1)).name.startswith("model.orin-sm87.trt10.3.0.fp16.dla1.")
    assert slug("  Jetson AGX / Orin!! ") == "jetson-agx-orin"


def test_decision_builds_loads_and_rebuilds_on_mismatch(onnx_file):
    path, info = onnx_file
    key = _key(path)
    assert decide(path, key).reason == "no cached engine"
    engine = engine_path(path, key)
    write_engine(engine, b"fake engine bytes", key, info.to_json(), {})
    assert decide(path, key).action == "load"
    assert decide(path, key, force=True).action == "build"
    # Same file name, but the sidecar says another TensorRT / GPU built it (a copied file).
    for other in (
        replace(ORIN, tensorrt_version="10.7.0"),
        replace(ORIN, gpu_name="Xavier"),
        replace(ORIN, compute_capability=(7, 2)),
    ):
        write_engine(engine, b"fake engine bytes", replace(key, target=other), info.to_json(), {})
        decision = decide(path, key)
        assert decision.action == "build" and "built for" in decision.reason
    write_engine(engine, b"fake engine bytes", replace(key, precision="fp32"), info.to_json(), {})
    assert "precision fp32, need fp16" in decide(path, key).reason
    write_engine(engine, b"fake engine bytes", key, info.to_json(), {})
    engine.write_bytes(b"fake engine")  # truncated
    assert "truncated or modified" in decide(path, key).reason
    sidecar_path(engine).write_text("{not json")
    assert "unreadable engine sidecar" in decide(path, key).reason
    sidecar_path(engine).unlink()
    assert "no sidecar" in decide(path, key).reason


def test_stale_engines_are_those_of_an_older_onnx(onnx_file):
    path, info = onnx_file
    key = _key(path)
    old = replace(key, onnx_sha256="0" * 64)
    write_engine(engine_path(path, old), b"old", old, info.to_json(), {})
    other_precision = replace(old, precision="fp32")
    write_engine(engine_path(path, other_precision), b"old", other_precision, info.to_json(), {})
    assert stale_engines(path, key) == [engine_path(path, old)]


def test_plan_depends_on_the_tensorrt_major_version(onnx_file, tmp_path):
    path, info = onnx_file
    sha = file_sha256(path)
    plan = plan_build(path, info, EngineOptions("fp16"), ORIN, sha)
    assert plan.builder_flags == ("FP16",) and plan.parser_onnx == path and plan.derive is None
    assert plan.timing_cache.name == "model.orin-sm87.trt10.3.0.timing-cache"
    plan = plan_build(path, info, EngineOptions("fp16"), H100, sha)
    assert plan.builder_flags == () and plan.derive == "fp16" and plan.parser_onnx.name == f"model.{sha[:12]}.fp16.onnx"
    with pytest.raises(AnomaskError, match="INT8 needs calibration images"):
        plan_build(path, info, EngineOptions("int8"), ORIN, sha)
    plan = plan_build(path, info, EngineOptions("int8", calib_images=tmp_path), ORIN, sha)
    assert plan.builder_flags == ("INT8", "FP16") and plan.calibrator
    assert plan.calibration_cache.name == f"model.trt10.{sha[:12]}.int8-calibration"
    plan.calibration_cache.write_bytes(b"cache")  # a saved calibration cache replaces the images
    assert plan_build(path, info, EngineOptions("int8"), ORIN, sha).calibrator
    plan = plan_build(path, info, EngineOptions("int8", calib_images=tmp_path), H100, sha)
    assert plan.derive == "int8-qdq" and not plan.calibrator and plan.builder_flags == ()
    with pytest.raises(AnomaskError, match="does not support DLA"):
        plan_build(path, info, EngineOptions("fp16", dla_core=0), H100, sha)
    with pytest.raises(AnomaskError, match="DLA runs FP16 or INT8"):
        plan_build(path, info, EngineOptions("fp32", dla_core=0), ORIN, sha)


def test_ensure_engine_builds_once_then_loads_and_removes_stale(onnx_file, monkeypatch):
    path, info = onnx_file
    builds = []

    def fake_build(plan, info, options):
        builds.append(plan)
        return b"serialized engine %d" % len(builds)

    monkeypatch.setattr(tensorrt_builder, "build_serialized_engine", fake_build)
    messages = []
    engine = ensure_engine(path, EngineOptions("fp16"), target=ORIN, log=messages.append)
    assert len(builds) == 1 and engine.read_bytes() == b"serialized engine 1"
    sidecar = read_sidecar(engine)
    assert sidecar["key"] == _key(path) and sidecar["export"]["settings"]["batch"] == 2
    assert ensure_engine(path, EngineOptions("fp16"), target=ORIN, log=messages.append) == engine
    assert len(builds) == 1 and messages[-1].endswith("cached engine matches")
    # Another TensorRT on the same machine: a new engine, the old one is not touched.
    newer = replace(ORIN, tensorrt_version="10.7.0")
    assert ensure_engine(path, EngineOptions("fp16"), target=newer, log=messages.append) != engine
    assert engine.exists() and len(builds) == 2
    # The ONNX changes: rebuilt, and the engine of the old ONNX for this target goes.
    model = onnx.load(str(path))
    model.doc_string = "re-exported"
    onnx.save(model, str(path))
    fresh = ensure_engine(path, EngineOptions("fp16"), target=ORIN, log=messages.append)
    assert fresh != engine and not engine.exists() and not sidecar_path(engine).exists()
    assert any("removed stale engine" in m for m in messages)


def test_corrupt_or_bare_engine_files_give_clear_errors(onnx_file, tmp_path):
    path, info = onnx_file
    key = _key(path)
    engine = engine_path(path, key)
    write_engine(engine, b"engine bytes", key, info.to_json(), {})
    assert open_engine_info(engine)[0] == info
    engine.write_bytes(b"engine bytez")
    with pytest.raises(AnomaskError, match="engine file is corrupt"):
        open_engine_info(engine)
    bare = tmp_path / "trtexec.engine"
    bare.write_bytes(b"plan")
    with pytest.raises(AnomaskError, match="no sidecar trtexec.engine.json"):
        open_engine_info(bare)
