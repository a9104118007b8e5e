"""Static checks of the deployment files (no Docker engine on these machines: nothing is
built or run here) and the entrypoint's behaviour with stand-in commands."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
SCRIPTS = [DOCKER / "entrypoint.sh", DOCKER / "build-tensorrt-python.sh"]


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
    """pip installs only the project itself under requirements.lock, a package whose version
    is read from requirements.lock, or a wheel built in the image: no second list of versions."""
    declared_extras = set(pyproject()["project"]["optional-dependencies"])
    runs = " ".join(args for keyword, args in instructions(dockerfile) if keyword == "RUN")
    installs = re.findall(r"pip install ([^&;]*)", runs)
    assert installs
    for install in installs:
        assert not re.search(r"[A-Za-z0-9_.-]+==[0-9]", install), f"hard-coded version in: pip install {install}"
        words = shlex.split(install)
        targets = [
            w for i, w in enumerate(words) if not w.startswith("-") and not (i and words[i - 1] in VALUED_OPTIONS)
        ]
        for target in targets:
            project = re.fullmatch(r"\.(\[([a-z,]+)\])?", target)
            if project:
                assert "--constraint requirements.lock" in install
                assert set(filter(None, (project.group(2) or "").split(","))) <= declared_extras
            else:
                assert re.fullmatch(r"torch==\$\(sed -n 's/\^torch==//p' requirements.lock\)", target), target
    for script in SCRIPTS:  # the helper scripts install only wheels they built
        for install in re.findall(r"pip install (.*)", script.read_text()):
            assert install.strip().startswith("build/dist/"), install


def test_the_declared_python_version_is_the_images_python():
    requires = pyproject()["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "python3.11 -m venv" in text and "python3.12 -m venv" not in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_share_entrypoint_healthcheck_and_model_volume(dockerfile):
    found = dict(instructions(dockerfile))
    assert found["ENTRYPOINT"] == '["/opt/anomask/docker/entrypoint.sh"]'
    assert "docker/healthcheck.py" in found["HEALTHCHECK"]
    assert '"/models"' in found["VOLUME"]
    assert "colcon build" in " ".join(a for k, a in instructions(dockerfile) if k == "RUN")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_bash_n_and_shellcheck(script):
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


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
