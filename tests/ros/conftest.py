"""Shared fixtures of the ROS tests: a private rclpy context per module, the runtime test
double (tests/ros/fake_runtime.py, loaded by path: pytest runs in importlib mode), a helper
that spins an executor until a condition holds. ``small_model``, the real exported ONNX
model they run, is tests/conftest.py's."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

HERE = Path(__file__).resolve().parent


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def fake_runtime():
    return _load("fake_runtime")


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
