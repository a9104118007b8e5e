"""Launch file and YAML, checked without the ``launch`` package; the node as a real process:
start-up errors exit non-zero with the reason, SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from anomask_ros.params import BACKENDS, SPECS

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "anomask.launch.py"
PARAMS = ROOT / "launch" / "anomask.yaml"
PYTHON = sys.executable


def test_launch_file_parses_and_declares_its_arguments() -> None:
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DeclareLaunchArgument"
    }
    assert declared == {"model", "backend", "namespace", "params_file", "use_sim_time", "cameras"}
    executables = [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "executable"
    ]
    assert executables == ["segmentation_node"]


def test_yaml_lists_every_declared_parameter_with_its_default() -> None:
    values = yaml.safe_load(PARAMS.read_text())["/**"]["ros__parameters"]
    assert list(values) == [spec.name for spec in SPECS]
    for spec in SPECS:
        assert values[spec.name] == spec.default, spec.name
    lines = PARAMS.read_text().splitlines()
    is_parameter = [line.startswith("    ") and not line.strip().startswith("#") for line in lines]
    for index, line in enumerate(lines):
        if is_parameter[index]:  # the first line above that is no parameter is its comment
            above = next(i for i in range(index - 1, -1, -1) if not is_parameter[i])
            assert lines[above].strip().startswith("#"), f"no comment for: {line}"


def test_launch_file_and_yaml_offer_the_runtimes_backends() -> None:
    """The launch file and the YAML cannot import the list: they are checked against it."""
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    backend = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "DeclareLaunchArgument"
        and node.args[0].value == "backend"
    )
    keywords = {kw.arg: ast.literal_eval(kw.value) for kw in backend.keywords if kw.arg in ("choices", "default_value")}
    assert tuple(keywords["choices"]) == BACKENDS and keywords["default_value"] == BACKENDS[0]
    comment = next(line for line in PARAMS.read_text().splitlines() if "Runtime backend:" in line)
    assert " | ".join(BACKENDS) in comment


def test_yaml_comments_name_every_choice() -> None:
    """The comment above a parameter with choices (backend, panoptic_method, ...) names each
    value the node accepts, so a renamed value cannot stay behind in the YAML."""
    lines = PARAMS.read_text().splitlines()
    for spec in (s for s in SPECS if s.choices):
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{spec.name}:"))
        above = index - 1
        while lines[above].strip().startswith("#"):
            above -= 1
        comment = " ".join(lines[above + 1 : index])
        assert [c for c in spec.choices if c not in comment] == [], spec.name


def _node(args: list[str], fake: bool = False, **popen) -> subprocess.Popen:
    if fake:  # the runtime test double, in a real process
        code = (
            "import sys, fake_runtime; from anomask_ros.segmentation_node import main; sys.exit(main(sys.argv, "
            "fake_runtime.open_fake))"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    else:
        code = "import sys; from anomask_ros.segmentation_node import main; sys.exit(main(sys.argv))"
        env = dict(os.environ)
    return subprocess.Popen(
        [PYTHON, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def test_node_accepts_the_yaml_and_fails_clearly_without_a_model(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    proc = _node(["--ros-args", "--params-file", str(PARAMS), "-p", f"model_path:={missing}"])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"model file not found: {missing}" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(PARAMS.read_text().replace('backend: "auto"', 'backend: "cuda"'))
    proc = _node(["--ros-args", "--params-file", str(bad)])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "backend='cuda' is not one of" in err


@pytest.mark.slow  # two node processes
def test_sigint_and_sigterm_stop_the_node_cleanly() -> None:
    """Two nodes at once (start-up dominates), one stopped by each signal."""
    procs = {
        signum: _node(["--ros-args", "--params-file", str(PARAMS), "-p", f"cameras:=[cam{int(signum)}]"], fake=True)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        for signum, proc in procs.items():
            deadline = time.monotonic() + 60
            line = ""
            while "running: " not in line and time.monotonic() < deadline and proc.poll() is None:
                line = proc.stderr.readline()
            assert f"cameras cam{int(signum)}" in line, f"node did not start: {line}"
        for signum, proc in procs.items():
            proc.send_signal(signum)
        for signum, proc in procs.items():
            _, err = proc.communicate(timeout=15)
            assert proc.returncode == 0, (signum, err)
            assert "Traceback" not in err, err
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
