"""ONNX Runtime backend: the options each execution provider gets, and a clear error when
neither ONNX Runtime distribution (extras ``cpu`` / ``gpu``) is installed."""

import subprocess
import sys
from pathlib import Path

import pytest

from anomask.errors import AnomaskError
from anomask.export import runtime_onnx
from anomask.export.runtime import open_runtime
from anomask.export.runtime_onnx import provider_options_for

ALL_PROVIDERS = list(runtime_onnx.PREFERRED_PROVIDERS)


def test_tensorrt_provider_builds_fp16_only_when_asked():
    model = Path("/models/m.onnx")
    fp32 = provider_options_for("TensorrtExecutionProvider", model, device_id=1)
    fp16 = provider_options_for("TensorrtExecutionProvider", model, device_id=1, fp16=True)
    assert "trt_fp16_enable" not in fp32
    assert fp16 == {**fp32, "trt_fp16_enable": "True"}
    assert fp32["device_id"] == "1" and fp32["trt_engine_cache_path"] == "/models"
    assert provider_options_for("CUDAExecutionProvider", model, 1, fp16=True) == {"device_id": "1"}
    assert provider_options_for("CPUExecutionProvider", model, 0, fp16=True) == {}


def test_open_runtime_passes_fp16_to_the_providers(standin_onnx, monkeypatch):
    path = standin_onnx[0]
    seen = {}

    def session(path, options, providers, provider_options):
        seen.update(zip(providers, provider_options))
        raise RuntimeError("recorded")

    monkeypatch.setattr(runtime_onnx.ort, "InferenceSession", session)
    with pytest.raises(AnomaskError, match="recorded"):
        open_runtime(str(path), providers=ALL_PROVIDERS, fp16=True)
    assert seen["TensorrtExecutionProvider"]["trt_fp16_enable"] == "True"
    assert list(seen) == ALL_PROVIDERS


def test_without_onnxruntime_the_error_names_the_extras():
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"  # import onnxruntime now raises ImportError
        "from anomask.errors import AnomaskError\n"
        "try:\n    import anomask.export.runtime_onnx\n"
        "except AnomaskError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ONNX Runtime is not installed" in result.stdout
    assert "'cpu'" in result.stdout and "'gpu'" in result.stdout


def test_a_command_that_needs_onnxruntime_says_so_in_one_line():
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from anomask.cli import main\n"
        "sys.exit(main(['bench', 'runtime', '--help']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("anomask: error: ONNX Runtime is not installed")
