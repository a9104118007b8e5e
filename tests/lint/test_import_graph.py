"""The tree ``make lint`` gives import-linter holds every package of setup.py, so a layer
contract cannot pass only because its modules went unseen."""

import subprocess
import sys
from pathlib import Path

from anomask.cli import BENCHMARKS, COMMANDS

HERE = Path(__file__).resolve().parent


def _graph_modules(tree: Path) -> set[str]:
    code = "import grimp; print('\\n'.join(grimp.build_graph('anomask', 'anomask_ros').modules))"
    # Run in the tree, as make lint runs lint-imports: the current folder comes first on sys.path.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree, check=True)
    return set(result.stdout.split())


def test_grimp_sees_every_package_and_every_command_module(tmp_path):
    subprocess.run([sys.executable, str(HERE / "import_graph.py"), str(tmp_path / "tree")], check=True)
    modules = _graph_modules(tmp_path / "tree")
    packages = ("anomask.models", "anomask.training.data", "anomask.evaluation.metrics", "anomask.export")
    assert all(package in modules for package in (*packages, "anomask_ros.bag", "anomask.bench.quality"))
    assert {command.module for command in COMMANDS + BENCHMARKS} <= modules
