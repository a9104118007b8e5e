"""What runs on the car must run on JetPack 6's Python 3.10 (docker/Dockerfile.jetson): the
runtime, the node and the engine build from ONNX, with every first-party module they import.
vermin (pinned in the test extra) finds the lowest Python each file needs; training and
evaluation may need 3.11 and are not checked."""

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERMIN = str(Path(sys.executable).parent / "vermin")
# What the car runs: the node, each runtime backend, the engine build and the export command
# (`anomask export --build-only` in docker/entrypoint.sh), the command line that starts it.
CAR_ENTRY_MODULES = (
    "anomask.cli",
    "anomask_ros.segmentation_node",
    "anomask.export.runtime",
    "anomask.export.runtime_onnx",
    "anomask.export.runtime_tensorrt",
    "anomask.export.runtime_torch",
    "anomask.export.tensorrt_builder",
    "anomask.export.export_cli",
)
# vermin reads torch's Tensor.long() as Python 2's `long`.
VERMIN_OPTIONS = ["-t=3.10-", "--no-tips", "--violations", "--eval-annotations", "--exclude", "long"]

FILES_OF_IMPORTS = """
import importlib.util, sys, grimp
graph = grimp.build_graph("anomask", "anomask_ros")
entries = sys.argv[1:]
modules = set(entries).union(*(graph.find_upstream_modules(m) for m in entries))
print("\\n".join(sorted(importlib.util.find_spec(m).origin for m in modules)))
"""


def car_files(tree: Path) -> list[str]:
    """Files of the entry modules and of every first-party module they import (grimp's graph,
    built in the link tree of tests/lint/import_graph.py, as make lint builds it)."""
    result = subprocess.run(
        [sys.executable, "-c", FILES_OF_IMPORTS, *CAR_ENTRY_MODULES],
        capture_output=True,
        text=True,
        cwd=tree,
        check=True,
    )
    return [str(Path(f).resolve()) for f in result.stdout.split()]


def vermin(files: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([VERMIN, *VERMIN_OPTIONS, *files], capture_output=True, text=True)


def test_the_cars_modules_need_at_most_python_310(tmp_path):
    subprocess.run([sys.executable, str(HERE / "import_graph.py"), str(tmp_path / "tree")], check=True)
    files = car_files(tmp_path / "tree")
    names = {Path(f).name for f in files}
    assert {"segmentation_node.py", "runtime_onnx.py", "tensorrt_builder.py", "network.py"} <= names
    assert not any("/training/" in f or "/evaluation/" in f for f in files)
    result = vermin(files)
    assert result.returncode == 0, result.stdout + result.stderr
    minimum = re.search(r"Minimum required versions: 3\.(\d+)", result.stdout)
    assert minimum and int(minimum.group(1)) <= 10, result.stdout


def test_vermin_flags_a_python_311_module(tmp_path):
    module = tmp_path / "newer.py"
    module.write_text("import tomllib\n\ntry:\n    pass\nexcept* ValueError:\n    pass\n")
    result = vermin([str(module)])
    assert result.returncode != 0 and "tomllib" in result.stdout
