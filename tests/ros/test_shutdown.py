"""``until_shutdown``: a spin that ends because the context was shut down (SIGINT/SIGTERM)
ends quietly, whichever exception rclpy raised; failures with a live context still raise."""

import pytest
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from anomask_ros.shutdown import RCLError, until_shutdown


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def test_an_rcl_error_with_a_live_context_is_raised(context) -> None:
    with pytest.raises(RCLError, match="boom"), until_shutdown(context):
        raise RCLError("boom")


def test_after_shutdown_the_stop_exceptions_end_the_block_quietly(context) -> None:
    rclpy.shutdown(context=context)
    for error in (RCLError("context is not valid"), ExternalShutdownException(), KeyboardInterrupt()):
        with until_shutdown(context):
            raise error
    with pytest.raises(ValueError), until_shutdown(context):
        raise ValueError("not a stop")


def test_a_spin_of_a_shut_down_context_ends_quietly(context) -> None:
    node = Node("shutdown_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    rclpy.shutdown(context=context)  # what the signal handler does between two spin steps
    with until_shutdown(context):
        executor.spin_once(timeout_sec=0.01)
