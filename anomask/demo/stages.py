"""Runs the demo's stages in order, each in its own folder with a completion marker.

``OUT/<stage>/stage.json`` is written (atomically) when a stage finishes; it records the
stage's fingerprint (a hash of its settings chained with the previous stage's), its wall
time and a small summary later stages and the report read. A rerun skips every stage whose
marker carries the current fingerprint; from the first stage that runs (marker missing,
settings changed, ``force`` or ``start``) every later stage runs too, since its inputs
change. A stage's folder is emptied before it runs, except for a ``resumable`` stage that
was not forced (training continues from its newest checkpoint itself). A failure names
the stage and leaves the finished stages and their markers as they are.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomask.errors import AnomaskError
from anomask.evaluation.output_files import write_json

MARKER = "stage.json"
DEMO_FILE = "demo.json"
"""Top-level file that marks a folder as a demo output folder (so only such a folder's
stage subfolders are ever emptied)."""


@dataclass
class StageContext:
    """What a running stage gets: its folder, the summaries of the stages before it, and
    ``forced`` (the user asked for a fresh run of this stage)."""

    folder: Path
    summaries: dict[str, dict[str, Any]]
    forced: bool
    log: Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    run: Callable[[StageContext], dict[str, Any]]
    """Does the work in ``context.folder``; returns the summary stored in the marker."""
    settings: dict[str, Any] = field(default_factory=dict)
    """What the stage's result depends on (JSON-serialisable): part of its fingerprint."""
    estimate_s: float | None = None
    """Typical wall time on an idle 2-core CPU, for the progress line (None: unknown)."""
    resumable: bool = False


@dataclass
class StageOutcome:
    name: str
    ran: bool
    seconds: float
    """Wall time of the run that produced the stage's output (this one or an earlier one)."""
    summary: dict[str, Any]


def fingerprint(settings: dict[str, Any], previous: str) -> str:
    text = json.dumps({"settings": settings, "previous": previous}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The stage's marker, or None when it is missing or unreadable (then the stage runs)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and "fingerprint" in marker else None


def check_output_folder(out: Path) -> None:
    """``out`` must be new, empty, or an earlier demo's folder (it holds ``demo.json``)."""
    if out.exists() and not out.is_dir():
        raise AnomaskError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_FILE).is_file():
        raise AnomaskError(f"{out}: folder is not empty and holds no earlier demo ({DEMO_FILE}); choose another --out")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def run_stages(
    stages: list[Stage],
    out: Path,
    *,
    force: bool = False,
    start: str | None = None,
    log: Callable[[str], None] = print,
) -> list[StageOutcome]:
    """Run (or skip) every stage in order; returns one outcome per stage."""
    names = [s.name for s in stages]
    if start is not None and start not in names:
        raise AnomaskError(f"--from {start!r}: no such stage; stages: {', '.join(names)}")
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[StageOutcome] = []
    summaries: dict[str, dict[str, Any]] = {}
    previous = ""
    rerun = force
    for index, stage in enumerate(stages):
        folder = out / stage.name
        current = fingerprint(stage.settings, previous)
        previous = current
        forced = force or stage.name == start
        rerun = rerun or forced
        marker = None if rerun else read_marker(folder)
        prefix = f"[{index + 1}/{len(stages)}] {stage.name}"
        if marker is not None and marker["fingerprint"] == current:
            log(f"{prefix}: done in an earlier run ({_duration(marker['seconds'])}), skipped")
            summaries[stage.name] = marker["summary"]
            outcomes.append(StageOutcome(stage.name, False, marker["seconds"], marker["summary"]))
            continue
        rerun = True
        remaining = [s.estimate_s for s in stages[index:]]
        eta = f"; all remaining stages ~{_duration(sum(remaining))}" if None not in remaining else ""
        typical = f" (typically ~{_duration(stage.estimate_s)} on an idle 2-core CPU{eta})" if stage.estimate_s else ""
        log(f"{prefix}: {stage.description}{typical}")
        (folder / MARKER).unlink(missing_ok=True)
        if folder.exists() and (forced or not stage.resumable):
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            summary = stage.run(StageContext(folder, summaries, forced, log))
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is reported with its stage
            raise _failure(stage.name, error, out, [o.name for o in outcomes]) from error
        seconds = time.monotonic() - started
        write_json(
            folder / MARKER,
            {
                "stage": stage.name,
                "fingerprint": current,
                "seconds": seconds,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                "summary": summary,
            },
        )
        log(f"{prefix}: finished in {_duration(seconds)}")
        summaries[stage.name] = summary
        outcomes.append(StageOutcome(stage.name, True, seconds, summary))
    return outcomes


def _failure(name: str, error: Exception, out: Path, finished: list[str]) -> AnomaskError:
    if not isinstance(error, AnomaskError):
        traceback.print_exception(error)  # an unexpected error: its traceback helps the report
    kept = f"finished stages kept in {out}: {', '.join(finished)}" if finished else f"no finished stage in {out}"
    return AnomaskError(
        f"demo stage {name!r} failed: {type(error).__name__}: {error}\n"
        f"({kept}; rerunning the same command continues from stage {name!r})"
    )
