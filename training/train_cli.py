"""``anomask train``: run a recipe (or continue one) on one process or under ``torchrun``.

anomask train --recipe closed-set --preset small --out runs/closed
anomask train --recipe uno --preset small --init runs/closed/closed-set/final/model.safetensors --out runs/uno
anomask train --resume --out runs/uno
torchrun --nproc_per_node 2 -m anomask train --recipe closed-set --preset small --out runs/ddp
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

from anomask.arguments import positive_int
from anomask.errors import AnomaskError
from anomask.files import require_file, require_writable_dir
from anomask.training import distributed
from anomask.training.config import parse_overrides
from anomask.training.recipe_runner import RUN_FILE, RunSpec, run_recipe
from anomask.training.recipes import available_recipes, load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        help=f"recipe name ({', '.join(available_recipes())}) or a .yaml/.json recipe file (default: closed-set)",
    )
    parser.add_argument("--preset", help="settings preset: default (Cityscapes scale) or small (2-core CPU, synthetic)")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<recipe>)")
    parser.add_argument(
        "--init",
        type=Path,
        help="checkpoint to start from: the first fine-tune stage starts from it and the stages before it are skipped",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT_DIR",
        help="continue the run in --out from its newest checkpoint (or from CHECKPOINT_DIR)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="--out holds an earlier run: delete its run.json and stage folders and start again",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="[STAGE:]KEY=VALUE",
        help="override a setting, e.g. solver.lr=1e-5 or finetune:solver.iterations=50 (repeatable)",
    )
    parser.add_argument("--dataset", help="shortcut for --set data.dataset=...")
    parser.add_argument("--negatives", help="shortcut for --set data.negatives=... (negative pool)")
    parser.add_argument("--iterations", type=positive_int, help="shortcut for --set solver.iterations=N (every stage)")
    parser.add_argument("--seed", type=int, help="shortcut for --set seed=N")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the recipes with their sources and exit")


def _shortcuts(args: argparse.Namespace) -> list[str]:
    pairs = [
        ("data.dataset", args.dataset),
        ("data.negatives", args.negatives),
        ("solver.iterations", args.iterations),
        ("seed", args.seed),
    ]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def _device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AnomaskError(f"--device {name}: CUDA is not available on this machine")
    return device


PATH_SETTINGS = (("data", "dataset"), ("data", "negatives"))
"""Settings that name files: stored absolute, so a resume works from any folder."""


def _absolute(value: object) -> object:
    """``data/synth`` -> ``/abs/data/synth``; ``coco:ann.json:images`` -> its paths absolute
    (the kind before the first ``:`` stays); names such as ``synthetic`` stay."""
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    start = 1 if len(parts) > 1 else 0
    return ":".join(
        str(Path(part).resolve()) if i >= start and part and Path(part).exists() else part
        for i, part in enumerate(parts)
    )


def _absolute_paths(overrides: dict | None) -> dict | None:
    for values in (overrides or {}).values():
        for section, key in PATH_SETTINGS:
            if key in values.get(section, {}):
                values[section][key] = _absolute(values[section][key])
    return overrides


def _spec(args: argparse.Namespace, out: Path) -> RunSpec:
    overrides = _absolute_paths(parse_overrides(args.settings + _shortcuts(args)) or None)
    init = str(args.init.resolve()) if args.init else None
    if not args.resume:
        return RunSpec(args.recipe or "closed-set", args.preset or "default", overrides, init)
    run_file = out / RUN_FILE
    if not run_file.is_file():
        raise AnomaskError(f"--resume: {run_file} not found; nothing to resume in {out}")
    spec = RunSpec.read(run_file)
    given = {
        "--recipe": (args.recipe, spec.recipe),
        "--preset": (args.preset, spec.preset),
        "--init": (init, spec.init),
    }
    for flag, (value, stored) in given.items():
        if value is not None and value != stored:
            raise AnomaskError(f"--resume continues {out} as it was started ({flag} {stored}), not with {flag} {value}")
    if overrides is not None and overrides != (spec.overrides or None):
        raise AnomaskError(f"--resume continues {out} with its original settings; drop --set/shortcut options")
    return spec


STAGE_OUTPUTS = ("final", "best", "checkpoints", "metrics.jsonl", "tensorboard")


def _earlier_run(out: Path) -> list[Path]:
    """What an earlier run left in ``out``: its run.json and stage folders."""
    if not out.is_dir():
        return []
    stages = [p for p in sorted(out.iterdir()) if p.is_dir() and any((p / n).exists() for n in STAGE_OUTPUTS)]
    return [p for p in [out / RUN_FILE] if p.exists()] + stages


def _main_process() -> bool:
    """Rank 0 of a ``torchrun`` job, or the only process (before the process group exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def _fresh_out(out: Path, overwrite: bool) -> None:
    """A new run never mixes with an earlier one's checkpoints, final models or logs."""
    found = _earlier_run(out)
    if not found:
        return
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
    if not overwrite:
        raise AnomaskError(
            f"--out {out} holds an earlier training run ({names}): continue it with --resume, "
            "delete it and start again with --overwrite, or choose another --out"
        )
    if _main_process():
        for path in found:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        print(f"--overwrite: deleted {names} in {out}")


CPU_SECONDS_PER_BATCH = 15.0
"""One default-preset iteration on a 2-core CPU (batch 16 of 512x1024 crops), measured."""


def _cost_warning(spec: RunSpec, device: torch.device) -> None:
    """The Cityscapes-scale preset on a CPU takes weeks: say so before starting (the cost
    scaled from :data:`CPU_SECONDS_PER_BATCH` by each stage's batch and crop)."""
    if spec.preset != "default" or device.type != "cpu" or not _main_process():
        return
    stages = load_recipe(spec.recipe, spec.preset, spec.overrides).stages
    seconds = sum(
        s.solver.iterations * CPU_SECONDS_PER_BATCH * s.solver.batch_size / 16 * s.data.crop[0] * s.data.crop[1]
        for s in stages
    ) / (512 * 1024)
    print(
        f"warning: preset 'default' (Cityscapes scale) on the CPU: {sum(s.solver.iterations for s in stages)} "
        f"iterations, about {seconds / 3600:,.0f} hours (a batch of 16 512x1024 crops takes "
        f"~{CPU_SECONDS_PER_BATCH:.0f} s on a 2-core CPU); --preset small is sized for a CPU",
        file=sys.stderr,
    )


def _list() -> int:
    for name in available_recipes():
        recipe = load_recipe(name)
        stages = " -> ".join(s.name for s in recipe.stages)
        print(f"{name}: {stages}\n    {recipe.source}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    if args.init is not None:
        require_file(args.init, "checkpoint file")
    out = args.out or Path("runs") / Path(args.recipe or "closed-set").stem
    require_writable_dir(out, "--out")
    spec = _spec(args, out)
    if args.overwrite and args.resume:
        raise AnomaskError("--overwrite starts again, --resume continues: pass one of them")
    device = _device(args.device)
    if not args.resume:
        _fresh_out(out, args.overwrite)
    _cost_warning(spec, device)
    resume_from = None if args.resume in (False, True) else Path(args.resume)
    command = args.command_line
    try:
        finals = run_recipe(
            spec,
            out,
            device,
            command,
            resume=bool(args.resume),
            resume_from=resume_from,
            progress=not args.no_progress,
        )
    finally:
        distributed.shutdown()
    for path in finals:
        print(f"trained: {path}")
    if not finals:
        print(f"nothing to do: every stage in {out} has finished")
    return 0
