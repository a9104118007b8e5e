"""TensorRT runtime set-up order, against a fake ``tensorrt`` module (no GPU or TensorRT here):
the CUDA device is selected and the runtime's DLA core set before the engine is deserialised,
and a refused tensor address is an error. The real path has never run in this suite."""

import sys
import types

import numpy as np
import pytest
import torch

from anomask.errors import AnomaskError
from anomask.export import runtime_tensorrt
from anomask.export.engine_cache import BuildTarget, EngineKey, write_engine
from anomask.export.export_info import ExportInfo, ExportSettings
from anomask.export.runtime_tensorrt import TensorRTRuntime
from anomask.models.heads import OUTPUT_NAMES

from ..conftest import tiny_metadata

ORIN = BuildTarget("Orin", (8, 7), "10.3.0")


class FakeEngine:
    num_io_tensors = 1

    def get_tensor_name(self, index):
        return "frames"

    def get_tensor_dtype(self, name):
        return "uint8"

    def get_tensor_shape(self, name):
        return (1, 8, 8, 3)

    def create_execution_context(self):
        return types.SimpleNamespace(set_tensor_address=lambda name, address: False)


def _fake_tensorrt(calls, engine):
    class Runtime:
        def __init__(self, logger):
            calls.append("runtime")

        def __setattr__(self, name, value):
            calls.append(f"{name}={value}")

        def deserialize_cuda_engine(self, data):
            calls.append("deserialize")
            return engine

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    return types.SimpleNamespace(Logger=Logger, Runtime=Runtime, nptype=lambda dtype: np.uint8)


@pytest.fixture
def engine_file(tmp_path, monkeypatch):
    def make(dla_core):
        settings = ExportSettings(input_size=(8, 8), network_size=(8, 8), output_size=(8, 8), batch=1)
        info = ExportInfo(metadata=tiny_metadata(), settings=settings, outputs=OUTPUT_NAMES)
        key = EngineKey(ORIN, "fp16", "0" * 64, dla_core=dla_core)
        path = tmp_path / f"model{dla_core}.engine"
        write_engine(path, b"engine", key, info.to_json(), build={})
        monkeypatch.setattr(runtime_tensorrt, "detect_target", lambda device: ORIN)
        return path

    return make


@pytest.mark.parametrize("dla_core", [None, 1])
def test_device_and_dla_core_are_set_before_deserialising(engine_file, monkeypatch, dla_core):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(calls, engine=None))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(f"set_device={device}"))
    with pytest.raises(AnomaskError, match="could not deserialize"):
        TensorRTRuntime(engine_file(dla_core), device=1)
    expected = ["set_device=cuda:1", "runtime", *([f"DLA_core={dla_core}"] if dla_core is not None else [])]
    assert calls == [*expected, "deserialize"]


def test_refused_tensor_address_is_an_error(engine_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt([], engine=FakeEngine()))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)
    empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda shape, dtype, device=None: empty(shape, dtype=dtype))
    with pytest.raises(AnomaskError, match="TensorRT refused the device buffer of tensor frames"):
        TensorRTRuntime(engine_file(None))
