"""ament_python build of the ROS package ``anomask_ros`` (``colcon build`` of ``ros2_ws``).

Installs the node executable under ``lib/anomask_ros`` (where ``ros2 run`` and launch look)
and the launch and parameter files under ``share/anomask_ros/launch``. The launch files
live once, in the repository's top-level ``launch/`` folder, and are referenced here by a
path relative to this file. The repository root's setup.py installs the same Python
module into the virtual environment for ``anomask bag``; the two never meet: different
distribution names (``anomask`` / ``anomask_ros``) and different prefixes.
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "anomask_ros"
HERE = Path(__file__).resolve().parent
LAUNCH_DIR = HERE.parents[2] / "launch"


def _launch_files() -> list[str]:
    # setuptools wants data_files relative to this folder; colcon runs setup.py from here.
    return sorted(
        os.path.relpath(path, HERE) for pattern in ("*.launch.py", "*.yaml") for path in LAUNCH_DIR.glob(pattern)
    )


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _launch_files()),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="anomask maintainers",
    maintainer_email="anomask@example.com",
    description="Outlier-aware segmentation node and bag tools",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "segmentation_node = anomask_ros.segmentation_node:main",
        ],
    },
)
