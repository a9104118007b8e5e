"""``colcon build`` of ros2_ws with colcon from the virtual environment: the ament package
installs the executable and the launch/config files, and the installed node runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_colcon_build_installs_the_node_and_its_launch_files(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    build = subprocess.run(
        [
            str(VENV_BIN / "colcon"),
            "--log-base",
            str(tmp_path / "log"),
            "build",
            "--base-paths",
            "src",
            "--build-base",
            str(tmp_path / "build"),
            "--install-base",
            str(tmp_path / "install"),
        ],
        cwd=ROOT / "ros2_ws",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    prefix = tmp_path / "install" / "anomask_ros"
    executable = prefix / "lib" / "anomask_ros" / "segmentation_node"
    share = prefix / "share" / "anomask_ros"
    assert os.access(executable, os.X_OK)
    for name in ("package.xml", "launch/anomask.launch.py", "launch/anomask.yaml"):
        assert (share / name).read_bytes() == (
            ROOT / ("ros2_ws/src/anomask_ros" if name == "package.xml" else "") / name
        ).read_bytes()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "anomask_ros").exists()
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (site / "anomask_ros" / "segmentation_node.py").exists()
    assert not list((ROOT / "ros2_ws" / "src" / "anomask_ros").glob("*.egg-info")), (
        "the build wrote into the source tree"
    )

    # The installed node runs from the install space (its module first on the path).
    run = subprocess.run(
        [
            str(executable),
            "--ros-args",
            "--params-file",
            str(share / "launch" / "anomask.yaml"),
            "-p",
            "model_path:=/no/model.onnx",
        ],
        env={**env, "PYTHONPATH": f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "model file not found: /no/model.onnx" in run.stderr, run.stderr
    import_check = subprocess.run(
        [sys.executable, "-c", "import anomask_ros; print(anomask_ros.__file__)"],
        env={**env, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert import_check.stdout.strip() == str(site / "anomask_ros" / "__init__.py")
