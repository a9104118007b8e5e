"""The GPU runtimes against the CPU on the suite's stand-in export. Marked ``gpu``: ``make
test`` deselects them, ``make gpu-check`` runs them (its pytest_gpu stage)."""

import copy

import onnxruntime as ort
import pytest

from anomask.export.onnx_export import example_frames
from anomask.export.parity import compare_outputs, parity_report
from anomask.export.runtime_onnx import OnnxRuntime
from anomask.export.runtime_torch import TorchRuntime

pytestmark = pytest.mark.gpu


def _outputs(runtime, frames):
    return {name: value.copy() for name, value in runtime.run(frames, 0.5).items()}


def test_pytorch_runtime_on_cuda_matches_the_cpu(standin_onnx):
    _, network, metadata, settings = standin_onnx
    frames = example_frames(settings)
    cpu = _outputs(TorchRuntime(copy.deepcopy(network), metadata, settings, device="cpu"), frames)
    cuda = _outputs(TorchRuntime(copy.deepcopy(network), metadata, settings, device="cuda"), frames)
    results = compare_outputs(cpu, cuda)
    assert all(r.passed for r in results), parity_report(results)


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "TensorrtExecutionProvider"])
def test_onnxruntime_gpu_providers_match_the_cpu(standin_onnx, provider):
    path, _, _, settings = standin_onnx
    assert provider in ort.get_available_providers(), "install the gpu extra (onnxruntime-gpu)"
    frames = example_frames(settings)
    cpu = _outputs(OnnxRuntime(path, providers=["CPUExecutionProvider"]), frames)
    runtime = OnnxRuntime(path, providers=[provider, "CPUExecutionProvider"])
    assert runtime.providers[0] == provider and runtime.on_gpu
    results = compare_outputs(cpu, _outputs(runtime, frames))
    assert all(r.passed for r in results), parity_report(results)
