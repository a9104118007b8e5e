"""``anomask bench quality``: the papers' findings, reproduced (or not) on the synthetic default.

    anomask bench quality --budget-minutes 90 --seed 0 --out runs/quality-s0
    anomask bench quality --resume --out runs/quality-s0              # after a kill: finished models are kept
    anomask bench quality --budget-minutes 90 --seed 1 --out runs/quality-s1 --compare runs/quality-s0

Trains every model of the plan (``anomask.bench.quality.plan``) with the small preset, the same seed and
the same iteration counts per stage kind, evaluates each on the synthetic test split (seen
and unseen anomaly groups) with thresholds calibrated on ``anomaly_val``, and writes
``report.md`` (tables laid out like the papers', each claim with its verdict),
``results.json`` and its benchmark result file ``quality.json`` (``anomask.bench.results``:
the same numbers with date, commit, machine and command; the docs' copy is
``docs/results/quality.json``). With ``--compare`` the other run's numbers give the seed-to-seed noise,
which the verdicts then take into account.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from anomask.bench.quality.claims import judge_all
from anomask.bench.quality.metrics import PIXEL, Results, value
from anomask.bench.quality.plan import MODELS, CostModel, Iterations
from anomask.bench.quality.report import report, row_scores
from anomask.bench.quality.runner import PLAN_FILE, REPORT_FILE, RESULT_FILE, RESULTS_FILE, QualityRun, QualitySettings
from anomask.bench.results import write_result
from anomask.errors import AnomaskError
from anomask.evaluation.output_files import write_json, write_text
from anomask.threads import set_torch_threads

NOISE_METRICS = PIXEL + ("miou", "open_miou")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget-minutes",
        type=float,
        help="time budget: sets the iteration counts through the nominal "
        "idle-machine cost model (docs/findings.md); required unless --iterations or --resume",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        nargs=2,
        metavar=("BASE", "FINETUNE"),
        help="iterations of every base and fine-tune stage (instead of deriving them from the budget)",
    )
    parser.add_argument("--seed", type=int, help="training seed of every model (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default runs/quality-seed<SEED>); its {RESULT_FILE} is the benchmark result file",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out; finished models are not redone"
    )
    parser.add_argument(
        "--compare", type=Path, metavar="DIR", help="a finished run with another seed: seed-to-seed noise"
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="root of a synthetic dataset (default: the synthetic default anomask train uses, generated once)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="[STAGE:]KEY=VALUE",
        help="extra training setting for every run (as anomask train --set)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N images of each split")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _stored_plan(out: Path) -> dict[str, Any]:
    """``plan.json`` of the run in ``out``: its identity and the budget it was started with."""
    path = out / PLAN_FILE
    if not path.is_file():
        raise AnomaskError(f"--resume: {path} not found; nothing to resume in {out}")
    try:
        plan = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnomaskError(f"{path}: unreadable quality plan ({error})") from error
    if not isinstance(plan, dict) or "identity" not in plan:
        raise AnomaskError(f"{path}: unreadable quality plan (no identity)")
    return plan


def settings_from_args(args: argparse.Namespace) -> tuple[QualitySettings, QualityRun]:
    """Settings from the options (a resumed run takes what it was started with, unless given)."""
    stored: dict[str, Any] = {}
    budget = args.budget_minutes
    seed = args.seed
    out = args.out
    if args.resume:
        if out is None:
            raise AnomaskError("--resume needs --out (the folder of the run to continue)")
        plan = _stored_plan(out)
        stored = plan["identity"]
        budget = plan.get("budget_minutes") if budget is None else budget
        seed = stored["seed"] if seed is None else seed
    seed = 0 if seed is None else seed
    out = out or Path("runs") / f"quality-seed{seed}"
    if args.dataset is not None:
        dataset = args.dataset
    elif stored:
        dataset = Path(stored["dataset"])
    else:
        from anomask.evaluation.eval_data import default_synthetic_root

        dataset = default_synthetic_root()
    if not (Path(dataset) / "synth.json").is_file():
        raise AnomaskError(
            f"--dataset {dataset}: not a synthetic dataset (no synth.json; write one with anomask data synth)"
        )
    overrides = tuple(args.settings) if args.settings or not stored else tuple(stored["overrides"])
    limit = args.limit if args.limit is not None or not stored else stored["eval_limit"]
    if limit is not None and limit < 1:
        raise AnomaskError(f"--limit must be at least 1, got {limit}")
    draft = QualitySettings(
        out=out,
        iterations=Iterations(1, 1),
        seed=seed,
        dataset=str(dataset),
        overrides=overrides,
        eval_limit=limit,
        budget_minutes=budget,
        device=args.device,
        progress=not args.no_progress,
    )
    if args.iterations is not None:
        iterations = Iterations(*args.iterations)
    elif args.budget_minutes is not None:
        if args.budget_minutes <= 0:
            raise AnomaskError(f"--budget-minutes must be positive, got {args.budget_minutes:g}")
        iterations = CostModel().iterations(args.budget_minutes, QualityRun(draft).eval_images())
    elif stored:
        iterations = Iterations(**stored["iterations"])
    else:
        raise AnomaskError("give --budget-minutes N (or --iterations BASE FINETUNE, or --resume --out DIR)")
    settings = QualitySettings(**{**draft.__dict__, "iterations": iterations})
    return settings, QualityRun(settings, getattr(args, "command_line", None) or "anomask bench quality")


def seed_noise(results: Results, other: Results) -> dict[str, dict[str, float]]:
    """Per metric, the mean and max |difference| between two runs over every model and score."""
    noise = {}
    for metric in NOISE_METRICS:
        gaps = []
        for model in MODELS:
            for score in row_scores(model):
                a, b = value(results, model.name, score, metric), value(other, model.name, score, metric)
                if a == a and b == b:
                    gaps.append(abs(a - b))
        if gaps:
            noise[metric] = {"mean": sum(gaps) / len(gaps), "max": max(gaps), "n": len(gaps)}
    return noise


def _read_results(folder: Path) -> dict[str, Any]:
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise AnomaskError(f"--compare {folder}: {path} not found (a finished anomask bench quality run)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnomaskError(f"{path}: unreadable ({error})") from error


def _earlier_wall_s(out: Path) -> float:
    """Wall time the earlier invocations recorded in ``results.json`` (0 for a first one)."""
    path = out / RESULTS_FILE
    if not path.is_file():
        return 0.0
    timing = _read_results(out).get("timing", {})
    return float(timing.get("wall_s", timing.get("this_invocation_s", 0.0)))


def finish(
    quality: QualityRun, results: Results, started: float, load_start: float, compare: Path | None
) -> dict[str, Any]:
    """Claims, noise, ``results.json`` and ``report.md``."""
    settings = quality.settings
    noise_block = None
    other_verdicts = None
    noise_levels = None
    if compare is not None:
        other = _read_results(compare)
        noise = seed_noise(results, other["models"])
        noise_levels = {metric: spread["mean"] for metric, spread in noise.items()}
        other_verdicts = {v["id"]: v["verdict"] for v in other["claims"]}
    verdicts = judge_all(results, noise_levels)
    if compare is not None:
        same = sum(
            other_verdicts.get(v.claim.id) == ("reproduced" if v.reproduced else "not reproduced") for v in verdicts
        )
        noise_block = {
            "other": str(compare),
            "seed": settings.seed,
            "other_seed": other["settings"]["seed"],
            "metrics": noise,
            "same_verdicts": same,
            "claims": len(verdicts),
        }
    loads = [r.get("load_1min") for r in results.values() if r.get("load_1min") is not None]
    invocation_s = time.perf_counter() - started
    timing = {
        "this_invocation_s": invocation_s,
        "wall_s": _earlier_wall_s(quality.out) + invocation_s,
        "training_s": sum(r.get("train_s") or 0.0 for r in results.values()),
        "evaluation_s": sum(r.get("eval_s") or 0.0 for r in results.values()),
        "load_1min": {"start": load_start, "end": os.getloadavg()[0], "per_model": loads},
    }
    header = {
        "budget": f"{settings.budget_minutes:g} minutes" if settings.budget_minutes else "none (--iterations)",
        "iterations": f"{settings.iterations.base} per base stage, {settings.iterations.finetune} per fine-tune stage",
        "seed": settings.seed,
        "dataset": f"{settings.dataset} (test split `anomaly`, thresholds calibrated on `anomaly_val`, mIoU on `val`)",
        "network input at evaluation": "x".join(str(v) for v in quality.network_size()),
        "training time (sum of stages)": f"{timing['training_s'] / 60:.1f} min",
        "evaluation time": f"{timing['evaluation_s'] / 60:.1f} min",
        "wall time": f"{timing['wall_s'] / 60:.1f} min, summed over the invocations that wrote this report "
        f"(this one {invocation_s / 60:.1f} min; a killed one is not counted)",
        "load average (1 min)": f"{load_start:.1f} at start, {timing['load_1min']['end']:.1f} at end, "
        f"{min(loads, default=float('nan')):.1f}-{max(loads, default=float('nan')):.1f} after each model",
        "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, device "
        f"{settings.device}",
        "command": f"`{quality.command}`",
    }
    data = {
        "settings": {
            "seed": settings.seed,
            "iterations": settings.iterations.__dict__,
            "dataset": settings.dataset,
            "budget_minutes": settings.budget_minutes,
            "overrides": list(settings.overrides),
            "eval_limit": settings.eval_limit,
        },
        "timing": timing,
        "claims": [v.to_dict() for v in verdicts],
        "noise": noise_block,
        "models": results,
    }
    write_json(quality.out / RESULTS_FILE, data)
    write_text(quality.out / REPORT_FILE, report(header, results, verdicts, noise_block, other_verdicts))
    return data


def run(args: argparse.Namespace) -> int:
    set_torch_threads(args.threads)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    settings, quality = settings_from_args(args)
    print(
        f"quality: {settings.iterations.base} base / {settings.iterations.finetune} fine-tune iterations, seed "
        f"{settings.seed}, "
        f"out {settings.out}",
        flush=True,
    )
    results = quality.execute(resume=args.resume)
    data = finish(quality, results, started, load_start, args.compare)
    write_result(settings.out / RESULT_FILE, "quality", args, data)
    done = sum(c["verdict"] == "reproduced" for c in data["claims"])
    print(
        f"wrote {settings.out / REPORT_FILE} and {RESULTS_FILE}: {done} of {len(data['claims'])} claims reproduced, "
        f"{data['timing']['this_invocation_s'] / 60:.1f} min"
    )
    return 0
