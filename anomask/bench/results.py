"""Benchmark result files: what ``anomask bench NAME --out FILE.json`` writes.

One JSON object per run::

    {"benchmark": NAME, "date": ISO-8601 UTC, "commit": short hash (+"-dirty"),
     "machine": {"cpu", "cores", "torch_threads", "gpu" (or null), "python", "torch"},
     "command": the command line, "results": {...}}

``results`` is the benchmark's own (its rows, as printed). The docs' tables are made from
the canonical files ``docs/results/NAME.json`` (``anomask bench tables``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from anomask.evaluation.output_files import write_json

REPOSITORY = Path(__file__).resolve().parents[2]


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE.json",
        help="also write the result file here (date, commit, machine, command, results); the docs' tables read "
        "docs/results/NAME.json",
    )


def commit(repository: Path = REPOSITORY) -> str:
    """Short hash of HEAD, ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""

    def git(*words: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repository), *words], capture_output=True, text=True)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(torch_threads: int | None = None) -> dict[str, Any]:
    """``torch_threads``: what the measuring process used, when that is not this one."""
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch_threads or torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def result_record(
    benchmark: str, command: str, results: dict[str, Any], torch_threads: int | None = None
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(torch_threads),
        "command": command,
        "results": results,
    }


def write_result(
    path: Path, benchmark: str, args: argparse.Namespace, results: dict[str, Any], torch_threads: int | None = None
) -> Path:
    """Writes the result file of one run (atomically) and says where."""
    command = getattr(args, "command_line", None) or f"anomask bench {benchmark}"
    written = write_json(path, result_record(benchmark, command, results, torch_threads))
    print(f"wrote {written}")
    return written
