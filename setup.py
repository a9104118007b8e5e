"""Maps the one import namespace, ``anomask``, onto the repository's fixed top-level folders.

``anomask.models`` lives in ``models/``, ``anomask.training`` in ``training/`` and so on, so
nothing installs a generic top-level name such as ``models`` into site-packages. The ROS
package's Python module ``anomask_ros`` is installed too, so ``anomask bag ...`` works from
the virtual environment; ``colcon build`` of ``ros2_ws`` installs it the ROS way.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "anomask": "anomask",
    "anomask.models": "models",
    "anomask.training": "training",
    "anomask.evaluation": "evaluation",
    "anomask.export": "export",
    "anomask_ros": "ros2_ws/src/anomask_ros/anomask_ros",
}


def _packages() -> list[str]:
    names = []
    for name, folder in PACKAGE_DIRS.items():
        names.append(name)
        names.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return names


setup(
    packages=_packages(),
    package_dir=PACKAGE_DIRS,
    package_data={"": ["*.yaml", "*.json"]},
)
