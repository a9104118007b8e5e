"""Builds the folder ``make lint`` runs ``lint-imports`` on: a throw-away tree of symlinks
that lays out every package of setup.py's ``PACKAGE_DIRS`` the way it is imported.

Why: grimp (import-linter's graph builder) walks only the folder of each top-level
package, and the editable install maps ``anomask.models`` onto ``models/``,
``anomask.training`` onto ``training/`` ... with a meta-path finder that grimp does not
follow; so on the repository as it is it sees none of those subpackages. In this tree
``anomask/models`` is a link to ``models/`` (grimp walks with ``followlinks=True``).
``lint-imports`` puts its current folder first on ``sys.path``, so ``make lint`` runs it in
the tree: the ordinary path finder finds ``anomask`` there before the editable finder (or
the repository's own ``anomask/``) is asked.

    python tests/lint/import_graph.py build/import-graph
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package_dirs(setup_py: Path = ROOT / "setup.py") -> dict[str, str]:
    """``PACKAGE_DIRS`` of setup.py, read without running it (it calls ``setup()``)."""
    for node in ast.parse(setup_py.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PACKAGE_DIRS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{setup_py}: no PACKAGE_DIRS")


def build_tree(out: Path, dirs: dict[str, str], root: Path = ROOT) -> None:
    """A package whose subpackages live elsewhere becomes a folder of links to its own
    entries plus a link per such subpackage; any other package is one link to its folder."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in sorted(dirs, key=lambda n: n.count(".")):
        target = out.joinpath(*name.split("."))
        source = root / dirs[name]
        if any(other.startswith(f"{name}.") for other in dirs):
            target.mkdir()
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    _link(entry, target / entry.name)
        else:
            _link(source, target)


def _link(source: Path, target: Path) -> None:
    target.symlink_to(os.path.relpath(source, target.parent))


if __name__ == "__main__":
    build_tree(Path(sys.argv[1]).resolve(), package_dirs())
