"""Shared fixtures of the ROS tests: a private rclpy context per module, the runtime test
double (tests/ros/fake_runtime.py, loaded by path: pytest runs in importlib mode), a helper
that spins an executor until a condition holds, and ``small_model``: a real exported ONNX
model, made once per session (the dynamo export takes tens of seconds)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

HERE = Path(__file__).resolve().parent
SMALL_INPUT = (64, 128)
"""Camera frames of the small model (H, W)."""
SMALL_NETWORK = (128, 256)
"""Its network resolution: large enough that inference runs at a few Hz (the load test)."""
SMALL_OUTPUT = (32, 64)
"""Its output resolution: neither the frame's nor the network's, so resizing is exercised."""


def _load(name: str, path: Path | None = None):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path or HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def fake_runtime():
    return _load("fake_runtime")


@dataclass(frozen=True)
class SmallModel:
    onnx: Path
    checkpoint: Path


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> SmallModel:
    """A randomly initialised tiny Mask2Former (the export tests' ``tiny_metadata``: road,
    sky, car; 4 queries) saved as a checkpoint and exported with the export package's API:
    frames 64x128 RGB, network 128x256, outputs 32x64, EAM, batch 1."""
    import torch

    from anomask.export.export_info import ExportSettings
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx
    from anomask.models import build_model, save_checkpoint

    export_conftest = _load("export_conftest", HERE.parent / "export" / "conftest.py")
    folder = tmp_path_factory.mktemp("small_model")
    torch.manual_seed(0)
    metadata = export_conftest.tiny_metadata()
    network = build_model(metadata.architecture).eval()
    checkpoint = save_checkpoint(folder / "small.safetensors", network, metadata)
    settings = ExportSettings(
        input_size=SMALL_INPUT, network_size=SMALL_NETWORK, output_size=SMALL_OUTPUT, score="eam", batch=1
    )
    onnx = folder / "small.onnx"
    export_onnx(network, build_heads(metadata, settings), metadata, settings, onnx)
    return SmallModel(onnx, checkpoint)


@pytest.fixture(scope="module")
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture
def spin_until(ros_context):
    """spin_until(nodes, condition, timeout) -> bool: spins the nodes until condition()."""
    executor = SingleThreadedExecutor(context=ros_context)

    def run(nodes, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        for node in nodes:
            executor.add_node(node)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if condition():
                    return True
                executor.spin_once(timeout_sec=0.02)
            return condition()
        finally:
            for node in nodes:
                executor.remove_node(node)

    yield run
    executor.shutdown()
