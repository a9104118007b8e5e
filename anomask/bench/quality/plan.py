"""What ``anomask bench quality`` trains and evaluates, and how a time budget becomes
iteration counts.

Trainings that share a stage share it: one closed-set Mask2Former (masked attention) is
the starting point of the EAM, UNO and masked-attention contrastive fine-tunes; the
``mask2anomaly`` recipe's GMA stage is the starting point of its own contrastive stage; one
closed-set per-pixel model is the starting point of the two-head fine-tune on noisy
negatives. Every *base* stage runs ``base`` iterations and every *fine-tune* stage
``finetune`` iterations, with the same seed, so models of one kind had the same budget.

The budget maps to iterations through a fixed cost model (``CostModel``: seconds per
iteration and per evaluated image on an idle 2-core CPU, measured and written in the
docs/findings.md), not through the speed of the moment: the same budget and seed give the same
iterations, hence the same table, whatever the machine's load; the wall time is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anomask.errors import AnomaskError
from anomask.training.recipes import SMALL_PRESET_ITERATION_S

BASE = "base"
FINETUNE = "finetune"


@dataclass(frozen=True)
class Run:
    """One ``anomask train`` run (a recipe, in its own folder under ``OUT/runs``)."""

    name: str
    recipe: str
    stages: dict[str, str]
    """Stage name -> ``BASE`` or ``FINETUNE`` (its iteration count) for the stages it runs."""
    init: str | None = None
    """Model whose final weights start the run's first fine-tune stage (``--init``)."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``--set`` overrides in nested form (``{"*": {...}, STAGE: {...}}``)."""


@dataclass(frozen=True)
class Model:
    """A trained model: one stage's ``final/model.safetensors`` of a run, and how it is scored."""

    name: str
    run: str
    stage: str
    title: str
    scores: tuple[str, ...]
    """Scores for ``anomask.evaluation.evaluate`` (the first one feeds open-set panoptic/GOSS)."""
    per_pixel: bool = False
    """The two-head model of noisy negatives (Bevandić et al., 2022): its outlier head (OP) and
    max-softmax (MSM) are scored apart too."""


def _set(**stages: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {("*" if key == "all" else key): value for key, value in stages.items()}


RUNS: tuple[Run, ...] = (
    Run("m2f", "closed-set", {"closed-set": BASE}),
    Run("m2f-eam", "eam", {"finetune": FINETUNE}, init="m2f"),
    Run("m2f-uno", "uno", {"finetune": FINETUNE}, init="m2f"),
    # Mask2Anomaly (Rai et al., 2024), Table 5(a), row "CL + RM without GMA": the contrastive
    # stage on the masked-attention model.
    Run(
        "m2f-cl",
        "mask2anomaly",
        {"contrastive": FINETUNE},
        init="m2f",
        overrides=_set(contrastive={"model": {"global_masked_attention": False}}),
    ),
    Run("gma", "mask2anomaly", {"gma": BASE, "contrastive": FINETUNE}),
    # The max-softmax baseline of noisy negatives (Bevandić et al., 2022) is a per-pixel model
    # trained without negatives ...
    Run("pp", "per-pixel", {"per-pixel": BASE}, overrides=_set(all={"data": {"paste": "none"}})),
    # ... and its two-head model continues it on noisy negatives (the recipe's pasting).
    Run("pp-noisy", "per-pixel", {"per-pixel": FINETUNE}, init="pp", overrides=_set(all={"init": "previous"})),
)

MODELS: tuple[Model, ...] = (
    Model(
        "m2f",
        "m2f",
        "closed-set",
        "Mask2Former, masked attention, closed set (K+1)",
        ("eam", "msp", "am", "ahm", "aem_energy", "eam_energy", "rba", "msp+refined"),
    ),
    Model("m2f-eam", "m2f-eam", "finetune", "EAM (Grcić et al., 2023), §3.4: void negatives fine-tune", ("eam", "msp")),
    Model(
        "m2f-uno",
        "m2f-uno",
        "finetune",
        "UNO (Delić et al., 2024), §4: K+2 fine-tuned on negatives labelled K",
        ("uno", "uno_unc", "uno_no", "msp"),
    ),
    Model("m2f-cl", "m2f-cl", "contrastive", "masked attention + contrastive fine-tune", ("msp", "msp+refined")),
    Model("gma", "gma", "gma", "global masked attention, closed set", ("msp", "msp+refined")),
    Model("gma-cl", "gma", "contrastive", "Mask2Anomaly: GMA + contrastive fine-tune", ("msp", "msp+refined")),
    Model("pp", "pp", "per-pixel", "per-pixel, closed set (no negatives)", ("op_msm",), per_pixel=True),
    Model(
        "pp-noisy",
        "pp-noisy",
        "per-pixel",
        "two-head, noisy negatives (Bevandić et al., 2022)",
        ("op_msm",),
        per_pixel=True,
    ),
)


def models_of(run: Run) -> list[Model]:
    return [model for model in MODELS if model.run == run.name]


@dataclass(frozen=True)
class Iterations:
    base: int
    finetune: int

    def __post_init__(self) -> None:
        if self.base < 1 or self.finetune < 1:
            raise AnomaskError(f"iterations must be at least 1 (base {self.base}, fine-tune {self.finetune})")

    def of(self, kind: str) -> int:
        return self.base if kind == BASE else self.finetune


@dataclass(frozen=True)
class CostModel:
    """Nominal cost: CPU seconds with one torch thread, i.e. the wall time on an idle core
    (docs/findings.md: how they were measured)."""

    base_iteration_s: float = SMALL_PRESET_ITERATION_S
    """One base-stage iteration of the small preset: process CPU time with one torch thread."""
    finetune_iteration_s: float = 0.5
    """One fine-tune iteration, the mean of the five fine-tune stages (UNO 0.65, EAM 0.73,
    the two frozen-backbone contrastive stages 0.31, per-pixel 0.55 s)."""
    eval_image_s: float = 0.3
    """One evaluated image at the half-resolution network input (network once, every
    score's heads, both metric passes)."""
    overhead_s: float = 60.0
    """Start-up, data generation check, stage set-up."""
    finetune_share: float = 0.5
    """Fine-tune iterations per base iteration (the small preset's 150 / 300)."""

    def training_seconds(self, iterations: Iterations) -> float:
        base, finetune = stage_counts()
        return (
            base * iterations.base * self.base_iteration_s + finetune * iterations.finetune * self.finetune_iteration_s
        )

    def eval_seconds(self, images: int) -> float:
        return len(MODELS) * images * self.eval_image_s

    def iterations(self, budget_minutes: float, eval_images: int) -> Iterations:
        """The largest iteration counts (base; fine-tune = ``finetune_share`` x base) whose
        nominal training and evaluation time fit ``budget_minutes``; base rounded down to a
        multiple of 10 from 10 on."""
        base_stages, finetune_stages = stage_counts()
        per_base = (
            base_stages * self.base_iteration_s + finetune_stages * self.finetune_share * self.finetune_iteration_s
        )
        left = budget_minutes * 60.0 - self.overhead_s - self.eval_seconds(eval_images)
        base = int(left / per_base) if left > 0 else 0
        if base >= 10:
            base -= base % 10
        if base < 2:
            needed = (self.overhead_s + self.eval_seconds(eval_images) + 2 * per_base) / 60
            raise AnomaskError(
                f"--budget-minutes {budget_minutes:g} leaves no time to train: at least {needed:.1f} minutes "
                "are needed (or pass --iterations BASE FINETUNE)"
            )
        return Iterations(base, max(1, round(base * self.finetune_share)))


def stage_counts() -> tuple[int, int]:
    """How many base and fine-tune stages the plan trains."""
    kinds = [kind for run in RUNS for kind in run.stages.values()]
    return kinds.count(BASE), kinds.count(FINETUNE)
