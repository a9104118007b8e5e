"""Suite-wide settings: every test process gets its own ROS domain, on loopback only.

Several pytest runs (and developers) may share a machine; a private ``ROS_DOMAIN_ID``
per pytest process keeps their nodes from hearing each other. Subprocesses inherit it.
"""

import os
import random

import pytest

if "ANOMASK_TEST_DOMAIN_SET" not in os.environ:
    # Domains 1..101 map to DDS ports that stay clear of Linux ephemeral ports.
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ANOMASK_TEST_DOMAIN_SET"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run only where CUDA is; elsewhere they are skipped with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
