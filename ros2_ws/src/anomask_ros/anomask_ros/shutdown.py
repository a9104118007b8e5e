"""Ending a spin cleanly on SIGINT / SIGTERM.

rclpy's signal handler shuts the context down between two steps of the executor: an
executor that passed its ``ok()`` check and then builds its wait set raises ``RCLError``
("context is not valid", rcl/wait.c) instead of ``ExternalShutdownException`` (seen in a
test run: a node stopped with SIGTERM exited 1 with that traceback). Both are the stop that
was asked for; an ``RCLError`` while the context is still valid is a real failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation

RCLError = rclpy_implementation.RCLError


@contextmanager
def until_shutdown(context: Context | None = None) -> Iterator[None]:
    """Runs the block; a shutdown of ``context`` (None: the default one) ends it quietly."""
    try:
        yield
    except (ExternalShutdownException, KeyboardInterrupt):
        pass
    except RCLError:
        if rclpy.ok(context=context):
            raise
