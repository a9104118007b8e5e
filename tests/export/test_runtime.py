"""The runtime interface: backend choice, same outputs from every backend, input checks,
no stale or uninitialised output rows."""

import numpy as np
import onnxruntime as ort
import pytest

from anomask.errors import AnomaskError
from anomask.export.engine_cache import BuildTarget, EngineKey, engine_path, file_sha256, write_engine
from anomask.export.onnx_export import example_frames, read_export_info_file
from anomask.export.parity import compare_outputs
from anomask.export.runtime import backend_for, open_runtime
from anomask.export.runtime_onnx import choose_providers
from anomask.export.runtime_torch import TorchRuntime


def _session_outputs(path, frames, threshold):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {"frames": frames, "threshold": np.array(threshold, np.float32)})
    return dict(zip(names, values))


def test_backend_from_extension_or_explicit():
    assert backend_for("m.engine") == backend_for("m.PLAN") == "tensorrt"
    assert backend_for("m.onnx") == "onnxruntime" and backend_for("m.safetensors") == "pytorch"
    assert backend_for("m.onnx", "tensorrt") == "tensorrt"
    with pytest.raises(AnomaskError, match="cannot tell the backend"):
        backend_for("m.pt")
    with pytest.raises(AnomaskError, match="unknown runtime backend 'tvm'"):
        backend_for("m.onnx", "tvm")
    for backend in ("auto", "tensorrt"):  # the Torch-TensorRT program: refused by name
        with pytest.raises(AnomaskError, match=r"m.ep: a Torch-TensorRT program \(.ep\) is not served"):
            backend_for("m.ep", backend)
    assert choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    with pytest.raises(AnomaskError, match="no such model file"):
        open_runtime("missing.onnx")


def test_interface_and_outputs_match_a_plain_session(standin_onnx):
    path, _, metadata, settings = standin_onnx
    runtime = open_runtime(str(path))
    assert runtime.backend == "onnxruntime" and runtime.providers == ["CPUExecutionProvider"]
    assert runtime.input_size == (32, 48) and runtime.input_format == "RGB" and runtime.max_batch == 2
    assert runtime.metadata == read_export_info_file(path).metadata and runtime.metadata.classes == metadata.classes
    frames = example_frames(settings, seed=3)
    got = runtime.run(frames, 0.2)
    want = _session_outputs(path, frames, 0.2)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    assert got["semantic"].dtype == np.uint8 and got["semantic"].shape == (2, 16, 24)
    assert got["anomaly"].dtype == np.float32 and got["open_set"].dtype == np.uint8
    assert set(runtime.last_timings) == {"upload", "compute", "download"}


def test_outputs_are_fully_written_never_stale_or_poisoned(standin_onnx, standin_dynamic):
    for path, *_ in (standin_onnx, standin_dynamic):
        runtime = open_runtime(str(path))
        frames = example_frames(runtime.info.settings, seed=5)[:1]  # one camera of a larger batch
        want = runtime.run(frames, 0.1)
        for buffer in runtime._outputs.values():
            buffer.view(np.uint8)[...] = 0xA5  # poison every byte
        got = runtime.run(frames, 0.1)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
            assert got[name].shape[0] == 1
        got["semantic"][...] = 99  # results are copies: the next run does not see them
        assert not np.shares_memory(got["semantic"], runtime._outputs["semantic"])


def test_dynamic_batch_takes_one_to_max_frames(standin_dynamic):
    path, _, _, settings = standin_dynamic
    runtime = open_runtime(str(path))
    frames = np.concatenate([example_frames(settings, seed=s)[:1] for s in range(3)])
    together = runtime.run(frames, 0.3)
    alone = runtime.run(frames[2:], 0.3)
    np.testing.assert_array_equal(together["semantic"][2:], alone["semantic"])
    np.testing.assert_allclose(together["anomaly"][2:], alone["anomaly"], atol=1e-3)
    with pytest.raises(AnomaskError, match="batch of 4 frames, this model takes 1 to 3"):
        runtime.run(np.zeros((4, 32, 48, 3), np.uint8), 0.3)


def test_threshold_is_a_runtime_input(standin_onnx):
    path, _, _, settings = standin_onnx
    runtime = open_runtime(str(path))
    frames = example_frames(settings, seed=1)
    low, high = runtime.run(frames, -10.0), runtime.run(frames, 10.0)
    assert np.all(low["open_set"] == 254) and np.array_equal(high["open_set"], high["semantic"])


def test_wrong_inputs_are_clear_errors(standin_onnx):
    runtime = open_runtime(str(standin_onnx[0]))
    with pytest.raises(AnomaskError, match="frames must be uint8, got float32"):
        runtime.run(np.zeros((1, 32, 48, 3), np.float32), 0.5)
    with pytest.raises(AnomaskError, match=r"frames must be \[B, 32, 48, 3\] \(RGB\), got \[1, 64, 48, 3\]"):
        runtime.run(np.zeros((1, 64, 48, 3), np.uint8), 0.5)
    with pytest.raises(AnomaskError, match=r"got \[32, 48, 3\]"):
        runtime.run(np.zeros((32, 48, 3), np.uint8), 0.5)
    with pytest.raises(AnomaskError, match="numpy array"):
        runtime.run([[0]], 0.5)


@pytest.mark.parametrize("graph", ["standin_onnx", "standin_dynamic"])
def test_pytorch_backend_gives_the_same_outputs(graph, request):
    path, network, metadata, settings = request.getfixturevalue(graph)
    onnx_runtime = open_runtime(str(path))
    torch_runtime = TorchRuntime(network, metadata, settings)
    assert torch_runtime.metadata == onnx_runtime.metadata and torch_runtime.output_names == onnx_runtime.output_names
    assert torch_runtime.input_format == onnx_runtime.input_format == settings.input_format
    frames = example_frames(settings, seed=9)
    ours, reference = onnx_runtime.run(frames, 0.4), torch_runtime.run(frames, 0.4)
    assert ours["anomaly"].dtype == reference["anomaly"].dtype == np.dtype(settings.anomaly_dtype)
    assert all(r.passed for r in compare_outputs(reference, ours))
    assert set(torch_runtime.last_timings) == {"upload", "network", "heads", "download"}


def test_engine_files_without_tensorrt_fail_clearly(standin_onnx, tmp_path):
    path, *_ = standin_onnx
    info = read_export_info_file(path)
    key = EngineKey(BuildTarget("Orin", (8, 7), "10.3.0"), "fp16", file_sha256(path))
    engine = engine_path(tmp_path / "standin.onnx", key)
    write_engine(engine, b"plan", key, info.to_json(), {})
    engine.write_bytes(b"corrupted plan")
    with pytest.raises(AnomaskError, match="engine file is corrupt"):
        open_runtime(str(engine))
    write_engine(engine, b"plan", key, info.to_json(), {})
    with pytest.raises(AnomaskError, match="TensorRT is not installed"):
        open_runtime(str(engine))


def test_close_releases_the_backend_and_refuses_later_runs(standin_onnx):
    path, _, _, settings = standin_onnx
    frames = example_frames(settings, seed=1)
    with open_runtime(str(path)) as runtime:
        runtime.run(frames, 0.2)
    assert runtime.closed and runtime.session is None and runtime._outputs == {}
    with pytest.raises(AnomaskError, match="this runtime was closed"):
        runtime.run(frames, 0.2)
    runtime.close()  # a second close is harmless


@pytest.mark.parametrize("max_batch", [None, 2])
def test_a_checkpoint_is_served_with_batch_one_or_n(small_model, max_batch):
    """``open_runtime(model.safetensors)``: the default batch of one (a static batch; a dynamic
    batch of one is refused by ``ExportSettings``) and batches of 1 to N, with the exported
    graph's outputs."""
    onnx_runtime = open_runtime(str(small_model.onnx))
    sizes = {name: getattr(onnx_runtime.info.settings, name) for name in ("input_size", "network_size", "output_size")}
    options = {} if max_batch is None else {"max_batch": max_batch}
    runtime = open_runtime(str(small_model.checkpoint), **sizes, **options)
    assert runtime.backend == "pytorch" and runtime.max_batch == (max_batch or 1)
    assert runtime.info.settings.dynamic_batch == (max_batch is not None)
    frames = np.concatenate([example_frames(onnx_runtime.info.settings, seed=s) for s in range(runtime.max_batch)])
    together = runtime.run(frames, 0.4)
    for index in range(runtime.max_batch):
        alone = onnx_runtime.run(frames[index : index + 1], 0.4)
        mine = {name: value[index : index + 1] for name, value in together.items()}
        assert all(r.passed for r in compare_outputs(mine, alone))
