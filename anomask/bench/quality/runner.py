"""Runs the quality plan (``anomask.bench.quality.plan``): every training through ``anomask train``'s
``run_recipe``, every model through ``anomask.evaluation.evaluate``, one JSON file per
finished model, then the claims and the report.

Output folder::

    OUT/plan.json              settings, iterations, models (``--resume`` must match them)
    OUT/runs/<run>/...         ``anomask train`` output of each run (its checkpoints resume it)
    OUT/models/<model>.json    a finished model: training time, metrics (``evaluate``'s dict)
    OUT/results.json           every model, the claims and their verdicts, timing, load
    OUT/report.md              the tables laid out like the papers', the claims

A model whose JSON exists is neither retrained nor re-evaluated on ``--resume``; a run
killed mid-training continues from its newest checkpoint (``anomask train --resume``).
Thresholds (open-set maps, open-set panoptic, GOSS) are calibrated at 95 % TPR on the
synthetic default's ``anomaly_val`` split, never on the test split; training selects
nothing (the final weights are scored), so the test split is used for scoring only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from anomask.bench.quality.per_pixel import per_pixel_terms
from anomask.bench.quality.plan import MODELS, RUNS, CostModel, Iterations, Model, Run, models_of
from anomask.errors import AnomaskError
from anomask.evaluation.eval_data import synthetic_datasets
from anomask.evaluation.evaluate import EvalSettings, evaluate
from anomask.evaluation.output_files import write_json
from anomask.training.config import deep_update, parse_overrides
from anomask.training.recipe_runner import RUN_FILE, RunSpec, run_recipe
from anomask.training.recipes import load_recipe

PLAN_FILE = "plan.json"
RESULTS_FILE = "results.json"
RESULT_FILE = "quality.json"
"""The benchmark result file (``anomask.bench.results``): ``results.json`` with date, commit, machine and command."""
REPORT_FILE = "report.md"
PRESET = "small"
CALIBRATION_SPLIT = "anomaly_val"
FORMAT = 1
STRIDE = 32
CHECKPOINT_EVERY_MIN = 25
"""Checkpoints (for resuming a killed run) every quarter of a stage, at most every 25 iterations."""


@dataclass(frozen=True)
class QualitySettings:
    out: Path
    iterations: Iterations
    seed: int = 0
    dataset: str = ""
    """Root of the synthetic default (``anomask data synth``); resolved by the caller."""
    overrides: tuple[str, ...] = ()
    """Extra ``--set [STAGE:]KEY=VALUE`` for every run (e.g. a tiny model in tests)."""
    eval_limit: int | None = None
    """First N images of each evaluated split (all when None)."""
    budget_minutes: float | None = None
    device: str = "cpu"
    progress: bool = True
    cost: CostModel = field(default_factory=CostModel)

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the one it continues."""
        return {
            "format": FORMAT,
            "iterations": asdict(self.iterations),
            "seed": self.seed,
            "dataset": str(Path(self.dataset).resolve()),
            "overrides": list(self.overrides),
            "eval_limit": self.eval_limit,
            "models": [m.name for m in MODELS],
        }


class QualityRun:
    def __init__(self, settings: QualitySettings, command: str = "anomask bench quality") -> None:
        self.settings = settings
        self.out = settings.out
        self.command = command
        self.root = Path(settings.dataset)

    # -- folders -----------------------------------------------------------------------
    def run_dir(self, run: Run) -> Path:
        return self.out / "runs" / run.name

    def final_model(self, model: Model) -> Path:
        return self.out / "runs" / model.run / model.stage / "final" / "model.safetensors"

    def result_file(self, model: Model) -> Path:
        return self.out / "models" / f"{model.name}.json"

    def open_plan(self, resume: bool) -> None:
        """Write ``plan.json``, or check it against these settings when resuming."""
        path = self.out / PLAN_FILE
        identity = self.settings.identity()
        if path.is_file():
            if not resume:
                raise AnomaskError(
                    f"{self.out} already holds a quality run ({path}); pass --resume to continue it "
                    "or choose a new --out"
                )
            try:
                stored = json.loads(path.read_text())["identity"]
            except (OSError, json.JSONDecodeError, KeyError) as error:
                raise AnomaskError(f"{path}: unreadable quality plan ({error})") from error
            if stored != identity:
                changed = ", ".join(k for k in identity if stored.get(k) != identity[k])
                raise AnomaskError(
                    f"--resume {self.out}: the run was started with other settings ({changed}); "
                    "resume with the same options or choose a new --out"
                )
            return
        if resume:
            raise AnomaskError(f"--resume: {path} not found; nothing to resume in {self.out}")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(
            path,
            {
                "identity": identity,
                "budget_minutes": self.settings.budget_minutes,
                "cost_model": asdict(self.settings.cost),
            },
        )

    # -- costs (progress bar) ------------------------------------------------------------
    def eval_images(self) -> int:
        """Images one model evaluation reads: val, test and the calibration split."""
        limit = self.settings.eval_limit
        counts = [len(entry) for entry in synthetic_datasets(self.root)] + [len(self._calibration_entry())]
        return sum(c if limit is None else min(c, limit) for c in counts)

    def _calibration_entry(self) -> Any:
        from anomask.evaluation.eval_data import parse_dataset

        return parse_dataset(self.calibration_spec())[0]

    def calibration_spec(self) -> str:
        return f"synthetic-anomaly={self.root},split={CALIBRATION_SPLIT}"

    def train_cost(self, run: Run) -> float:
        cost = self.settings.cost
        return sum(
            self.settings.iterations.of(kind) * (cost.base_iteration_s if kind == "base" else cost.finetune_iteration_s)
            for kind in run.stages.values()
        )

    # -- one run, one model ---------------------------------------------------------------
    def overrides(self, run: Run) -> dict[str, dict[str, Any]]:
        common = {
            "seed": self.settings.seed,
            "data": {"dataset": str(self.root), "anomaly_split": None},
            # The bench scores every model itself: the trainer's end-of-stage check is cut short.
            "validation": {"every": 0, "max_images": 5},
            "checkpoint": {"keep_last": 1},
        }
        overrides: dict[str, dict[str, Any]] = {"*": common}
        for stage, kind in run.stages.items():
            iterations = self.settings.iterations.of(kind)
            overrides[stage] = {
                "solver": {"iterations": iterations},
                "checkpoint": {"every": max(CHECKPOINT_EVERY_MIN, iterations // 4)},
            }
        for extra in (run.overrides, parse_overrides(list(self.settings.overrides))):
            for stage, values in extra.items():
                overrides[stage] = deep_update(overrides.get(stage, {}), values)
        return overrides

    def train(self, run: Run) -> None:
        init = None
        if run.init is not None:
            base = next(m for m in MODELS if m.name == run.init)
            init = str(self.final_model(base))
            if not Path(init).is_file():
                raise AnomaskError(f"run {run.name!r} starts from model {run.init!r}, which is not trained ({init})")
        out = self.run_dir(run)
        spec = RunSpec(run.recipe, PRESET, self.overrides(run), init)
        run_recipe(
            spec,
            out,
            torch.device(self.settings.device),
            f"{self.command} [{run.name}]",
            resume=(out / RUN_FILE).is_file(),
            progress=self.settings.progress,
        )

    def network_size(self) -> tuple[int, int]:
        """The network input for evaluation: the frames resized by the preset's validation
        scale (the scale the models were trained and validated at), multiples of 32."""
        scale = (
            load_recipe("closed-set", PRESET, parse_overrides(list(self.settings.overrides)) or None)
            .stages[0]
            .validation.scale
        )
        height, width = synthetic_datasets(self.root)[1].dataset[0]["image"].shape[:2]
        return max(STRIDE, round(height * scale / STRIDE) * STRIDE), max(STRIDE, round(width * scale / STRIDE) * STRIDE)

    def evaluate_model(self, model: Model) -> dict[str, Any]:
        path = self.final_model(model)
        val, test = synthetic_datasets(self.root)
        size = self.network_size()
        eval_settings = EvalSettings(
            thresholds=self.calibration_spec(),
            limit=self.settings.eval_limit,
            panels=0,
            progress=self.settings.progress,
            tmp_dir=str(self.out / "tmp"),
        )
        (self.out / "tmp").mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        metrics = evaluate(
            path, [val, test], list(model.scores), None, settings=eval_settings, size=size, device=self.settings.device
        )
        result: dict[str, Any] = {
            "model": model.name,
            "title": model.title,
            "path": str(path),
            "network_size": list(size),
            "metrics": metrics,
        }
        if model.per_pixel:
            result["terms"] = per_pixel_terms(path, test, size, limit=self.settings.eval_limit)
        result["eval_s"] = time.perf_counter() - started
        summary = path.parent / "summary.json"
        result["train_s"] = json.loads(summary.read_text()).get("seconds") if summary.is_file() else None
        result["iterations"] = json.loads(summary.read_text()).get("iterations") if summary.is_file() else None
        result["load_1min"] = os.getloadavg()[0]
        return result

    # -- everything ------------------------------------------------------------------------
    def execute(self, resume: bool = False) -> dict[str, dict[str, Any]]:
        """Train and evaluate what is not finished; returns every model's result."""
        self.open_plan(resume)
        eval_cost = self.eval_images() * self.settings.cost.eval_image_s
        total = sum(self.train_cost(run) + eval_cost * len(models_of(run)) for run in RUNS)
        bar = tqdm(
            total=round(total),
            unit="s",
            desc="quality (nominal seconds)",
            disable=not self.settings.progress,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
        )
        results: dict[str, dict[str, Any]] = {}
        try:
            for run in RUNS:
                models = models_of(run)
                pending = [m for m in models if not self.result_file(m).is_file()]
                if pending:
                    if not all(self.final_model(m).is_file() for m in models):
                        bar.set_postfix_str(f"training {run.name}")
                        self.train(run)
                    bar.update(round(self.train_cost(run)))
                else:
                    bar.update(round(self.train_cost(run) + eval_cost * len(models)))
                for model in models:
                    if model in pending:
                        bar.set_postfix_str(f"evaluating {model.name}")
                        write_json(self.result_file(model), self.evaluate_model(model))
                        bar.update(round(eval_cost))
                    results[model.name] = json.loads(self.result_file(model).read_text())
        finally:
            bar.close()
        return results
