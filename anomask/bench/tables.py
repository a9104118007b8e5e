"""``anomask bench tables``: the docs' benchmark tables, made from the result files.

A doc page (``README.md``, ``docs/*.md``) marks where a table goes::

    <!-- bench-table: NAME -->
    ...generated...
    <!-- /bench-table -->

and this command rewrites every marked block from ``docs/results/NAME.json`` (written by
``anomask bench NAME --out``): a markdown table of the results, then a line with the date,
commit, machine and command. A marker whose result file does not exist yet says "not
measured yet". ``--check`` changes nothing and fails when a block is stale (a test runs it),
so measured numbers have one source, the result files.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anomask.errors import AnomaskError
from anomask.evaluation.output_files import write_text

RESULTS = Path("docs") / "results"
ROS_README = Path("ros2_ws") / "src" / "anomask_ros" / "README.md"
BLOCK = re.compile(r"(<!-- bench-table: ([\w-]+) -->\n).*?(<!-- /bench-table -->)", re.DOTALL)
Table = tuple[list[str], list[list[Any]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: this folder)")
    parser.add_argument("--check", action="store_true", help="change nothing; fail when a table is stale")


# -- one table per benchmark: (header, rows) from a result file's "results" ------------------
def _model(r: dict[str, Any]) -> Table:
    header = ["preset", "backbone", "input", "params (M)", "median ms", "min ms", "CPU ms", "peak MiB"]
    keys = ["preset", "backbone", "input", "params_m", "median_ms", "min_ms", "cpu_ms", "peak_mib"]
    return header, [[row[key] for key in keys] for row in r["rows"]]


def _heads(r: dict[str, Any]) -> Table:
    rows = [["network forward", "", r["forward_ms"], 100.0]]
    rows += [[row["head"], row["mode"], row["ms"], row["percent_of_forward"]] for row in r["rows"]]
    return ["head", "mode", "ms", "% of forward"], rows


def _runtime(r: dict[str, Any]) -> Table:
    header = ["backend", "size", "batch", "p50 ms", "p99 ms", "frames/s", "memory MB"]
    rows = [
        [
            row["backend"],
            "x".join(str(v) for v in row["size"]),
            row["batch"],
            row["stages_ms"]["total"]["p50"],
            row["stages_ms"]["total"]["p99"],
            row["frames_per_s"],
            row["peak_memory_mb"],
        ]
        for row in r["rows"]
    ]
    return header, rows


def _node(r: dict[str, Any]) -> Table:
    rows = [["end to end (publisher -> subscriber)", *r["end_to_end_ms"]]]
    rows += [[f"node {stage}", p50, p99] for stage, (p50, p99) in r["node_ms"].items()]
    return ["stage", "p50 ms", "p99 ms"], rows


def _transport(r: dict[str, Any]) -> Table:
    sizes = list(r["rows"][0]["received"])
    header = ["input_reliability", "FASTDDS_BUILTIN_TRANSPORTS", *(f"{size} received" for size in sizes)]
    rows = [
        [
            row["reliability"],
            row["transport"] + ("" if row["both_sides"] else " (node side only)"),
            *(f"{row['received'][size]} / {r['frames']}" for size in sizes),
        ]
        for row in r["rows"]
    ]
    return header, rows


def _eval(r: dict[str, Any]) -> Table:
    header = ["images", "peak RSS MB", *(f"{metric} ms/image" for metric in r["metrics"])]
    rows = [[row["images"], row["peak_rss_mb"], *(row["ms_per_image"][m] for m in r["metrics"])] for row in r["rows"]]
    return header, rows


def _int8(r: dict[str, Any]) -> Table:
    def percent(value: float | None) -> float | None:
        return None if value is None else 100 * value

    header = [
        "backbone",
        "frames",
        "calibration images",
        "peak RSS MiB",
        "CPU s",
        "TensorRT problems",
        "semantic agrees %",
        "worst image %",
        "open_set agrees %",
        "anomaly mean abs change",
    ]
    rows = [
        [
            row["backbone"],
            row["size"],
            row["calib_frames"],
            row["peak_rss_mib"],
            row["calibration_cpu_s"],
            row["tensorrt_problems"],
            percent(row["semantic_agreement"]),
            percent(row["semantic_agreement_worst"]),
            percent(row["open_set_agreement"]),
            row["anomaly_mean_abs_change"],
        ]
        for row in r["rows"]
    ]
    return header, rows


def _quality(r: dict[str, Any]) -> Table:
    rows = [[c["claim"], c["source"], c["verdict"], c["why"] or ""] for c in r["claims"]]
    return ["claim", "source", "verdict", "why not"], rows


def _quality_models(r: dict[str, Any]) -> Table:
    """Every model and score of a quality run (the per-pixel models: their terms too): anomaly
    metrics (%) on the test split and its seen / unseen groups, mIoU (%) on ``val``."""
    from anomask.bench.quality.metrics import value
    from anomask.bench.quality.per_pixel import PER_PIXEL_TERMS
    from anomask.bench.quality.plan import MODELS

    results = r["models"]
    header = ["model", "score", "AP", "AP seen", "AP unseen", "FPR95 unseen", "AUROC unseen", "mIoU"]
    rows = []
    for model in (m for m in MODELS if m.name in results):
        for score in PER_PIXEL_TERMS if model.per_pixel else model.scores:
            metrics = [
                value(results, model.name, score, metric, subset)
                for metric, subset in (
                    ("ap", "all"),
                    ("ap", "seen"),
                    ("ap", "unseen"),
                    ("fpr95", "unseen"),
                    ("auroc", "unseen"),
                    ("miou", "all"),
                )
            ]
            rows.append([model.name, score, *(100 * v for v in metrics)])
    return header, rows


TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "model": _model,
    "heads": _heads,
    "runtime": _runtime,
    "node": _node,
    "transport": _transport,
    "eval": _eval,
    "int8": _int8,
    "quality": _quality,
    "quality-models": _quality_models,
}
SOURCES = {"quality-models": "quality"}
"""Tables made from another benchmark's result file (default: the file named as the table)."""


# -- rendering -------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value).replace("|", "\\|")


def machine_text(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['torch_threads']} torch threads, "
        f"{machine['gpu'] or 'no GPU'}, Python {machine['python']}, torch {machine['torch']}"
    )


def render(name: str, record: dict[str, Any] | None) -> str:
    """The block's content: the table and its measured-line, or "not measured yet"."""
    if record is None:
        how = f"`anomask bench {name} --out {RESULTS / name}.json`"
        if SOURCES.get(name, name) == "quality":  # its --out is a folder; its result file is the folder's quality.json
            how = f"`anomask bench quality --out DIR`, then DIR/quality.json to {RESULTS}/quality.json"
        return f"_Not measured yet_ ({how}).\n"
    if name not in TABLES:
        raise AnomaskError(f"bench-table {name!r}: no table for it; known: {', '.join(TABLES)}")
    header, rows = TABLES[name](record["results"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    measured = f"measured {record['date'][:10]}, commit {record['commit']}, {machine_text(record['machine'])}"
    return "\n".join(lines) + f"\n\n{measured}; `{record['command']}`\n"


def read_record(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnomaskError(f"{path}: unreadable result file ({error})") from error


def rewrite(text: str, results_dir: Path) -> str:
    """``text`` with every marked block made from the result files."""
    return BLOCK.sub(lambda m: m[1] + render(m[2], read_record(results_dir, SOURCES.get(m[2], m[2]))) + m[3], text)


def doc_pages(root: Path) -> list[Path]:
    readme = root / "README.md"
    if not readme.is_file():
        raise AnomaskError(f"{root}: no README.md (give the repository root with --root)")
    ros_readme = root / ROS_README
    return [readme, *sorted((root / "docs").glob("*.md")), *([ros_readme] if ros_readme.is_file() else [])]


def stale_pages(root: Path) -> list[Path]:
    return [page for page in doc_pages(root) if rewrite(page.read_text(), root / RESULTS) != page.read_text()]


def run(args: argparse.Namespace) -> int:
    stale = stale_pages(args.root)
    if args.check:
        for page in stale:
            print(f"stale benchmark table in {page}: run anomask bench tables")
        return 1 if stale else 0
    for page in stale:
        write_text(page, rewrite(page.read_text(), args.root / RESULTS))
        print(f"rewrote the benchmark tables of {page}")
    return 0
