"""Runs a recipe's stages one after the other through the one :class:`Trainer`.

Output layout (``--out DIR``)::

    DIR/run.json                      how the run was started (recipe, preset, --set, --init)
    DIR/<stage>/checkpoints/iter_N/   model.safetensors + trainer_state.pt (last k kept)
    DIR/<stage>/best/model.safetensors   best validation metric so far
    DIR/<stage>/final/model.safetensors  the stage's result (the next stage starts from it)
    DIR/<stage>/metrics.jsonl, tensorboard/

A stage with ``init: previous`` starts from the previous stage's ``final`` model, or, when
it is the first stage to run, from ``--init``; with ``--init`` the stages before the first
such stage are skipped. ``--resume`` re-runs nothing that finished: it continues the first
unfinished stage from its newest checkpoint.

A stage counts as finished only when its ``final`` model was trained with the stage's current
settings from the current starting model: each model's metadata carries a stamp (SHA-256 of
the stage settings, iterations, SHA-256 of the starting model), compared on ``--resume``; a
stale ``final`` is trained again, never reported as the result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from anomask.errors import AnomaskError
from anomask.models import (
    ClassInfo,
    ModelConfig,
    ModelMetadata,
    add_negative_class,
    build_model,
    load_checkpoint,
    load_metadata,
)
from anomask.models.state_dict import load_state_dict_strict
from anomask.training import distributed
from anomask.training.checkpoints import MODEL_FILE, file_sha256, latest_intact
from anomask.training.config import StageConfig
from anomask.training.data_pipeline import build_train_data
from anomask.training.recipes import Recipe, load_recipe
from anomask.training.seeding import seed_everything
from anomask.training.trainer import StageOutputs, Trainer

RUN_FILE = "run.json"
STAMP = "stage_run"
"""Key of the stage stamp in a trained model's ``metadata.extra``."""


@dataclass(frozen=True)
class RunSpec:
    """What a run is: stored in ``run.json`` so ``--resume`` needs only ``--out``."""

    recipe: str
    preset: str = "default"
    overrides: dict[str, dict[str, Any]] | None = None
    init: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"recipe": self.recipe, "preset": self.preset, "overrides": self.overrides or {}, "init": self.init},
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def read(cls, path: Path) -> RunSpec:
        try:
            data = json.loads(path.read_text())
            return cls(data["recipe"], data["preset"], data["overrides"] or None, data["init"])
        except (OSError, json.JSONDecodeError, KeyError) as error:
            raise AnomaskError(f"{path}: unreadable run description ({error})") from error


def check_classes(checkpoint: Path, have: tuple[ClassInfo, ...], want: tuple[ClassInfo, ...], dataset: str) -> None:
    names_have = [c.name for c in have]
    names_want = [c.name for c in want]
    if names_have != names_want:
        raise AnomaskError(
            f"{checkpoint}: the checkpoint's {len(have)} classes ({', '.join(names_have)}) do not match "
            f"dataset {dataset!r}'s {len(want)} classes ({', '.join(names_want)})"
        )


def _with_overrides(config: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    return ModelConfig.from_dict({**config.to_dict(), **overrides})


def prepare_model(
    stage: StageConfig, classes: tuple[ClassInfo, ...], init: Path | None, recipe: Recipe, command: str | None
) -> tuple[torch.nn.Module, ModelMetadata]:
    """The stage's starting network: fresh (``model_preset`` + ``model``), or loaded from
    ``init`` (its classes checked against the dataset's), K+1 -> K+2 converted when the
    stage asks, with the stage's ``model`` settings applied (structure must not change)."""
    seed_everything(stage.seed)
    common = {
        "recipe": recipe.name,
        "command": command,
        "score": stage.validation.score,
        "extra": {"recipe": json.loads(recipe.text), "stage": stage.name},
    }
    if init is None:
        config = ModelConfig.preset(stage.model_preset, **{"num_classes": len(classes), **stage.model})
        if stage.convert_negative:
            config = replace(config, negative_class=True)
        return build_model(config), ModelMetadata(classes=classes, architecture=config, **common)
    model, metadata = load_checkpoint(init)
    check_classes(init, metadata.classes, classes, stage.data.dataset)
    if stage.convert_negative and not metadata.architecture.negative_class:
        model, metadata = add_negative_class(model, metadata)
    config = _with_overrides(metadata.architecture, stage.model)
    if config != model.config:
        rebuilt = build_model(config, load_pretrained=False)
        changed = {k: (v, config.to_dict()[k]) for k, v in model.config.to_dict().items() if config.to_dict()[k] != v}
        try:
            load_state_dict_strict(rebuilt, model.state_dict(), str(init))
        except AnomaskError as error:
            listing = ", ".join(f"{k}: checkpoint {a}, stage {b}" for k, (a, b) in changed.items())
            raise AnomaskError(
                f"{init} cannot start stage {stage.name!r}: the stage changes the architecture ({listing}); "
                f"start from a checkpoint of the recipe's earlier stage ({error})"
            ) from error
        model = rebuilt
    return model.train(), replace(metadata, architecture=config, thresholds={}, **common)


def stage_stamp(stage: StageConfig, init: Path | None) -> dict[str, Any]:
    """What makes a stage's result: its settings and the model it starts from."""
    settings = json.dumps(stage.to_dict(), sort_keys=True).encode()
    return {
        "settings_sha256": hashlib.sha256(settings).hexdigest(),
        "iterations": stage.solver.iterations,
        "init_sha256": file_sha256(init) if init is not None else None,
    }


def _stamp_of(model_file: Path) -> dict[str, Any] | None:
    return load_metadata(model_file).extra.get(STAMP)


def _log(dist: distributed.DistInfo, message: str) -> None:
    if dist.is_main:
        print(message, flush=True)


def _first_stage(recipe: Recipe, init: str | None) -> int:
    if init is None:
        return 0
    for index, stage in enumerate(recipe.stages):
        if stage.init == "previous":
            return index
    return 0


def run_recipe(
    spec: RunSpec,
    out: Path,
    device: torch.device,
    command: str | None,
    resume: bool = False,
    resume_from: Path | None = None,
    progress: bool = True,
) -> list[Path]:
    """Run (or continue) every stage; returns the final model of each stage that ran."""
    dist = distributed.init_distributed(device)
    recipe = load_recipe(spec.recipe, spec.preset, spec.overrides)
    out.mkdir(parents=True, exist_ok=True)
    if dist.is_main and not resume:
        (out / RUN_FILE).write_text(spec.to_json() + "\n")
    first = _first_stage(recipe, spec.init)
    if resume_from is not None:
        stage_roots = [(out / s.name).resolve() for s in recipe.stages[first:]]
        if resume_from.resolve().parent.parent not in stage_roots:
            raise AnomaskError(
                f"--resume {resume_from}: not a checkpoint folder of this run's stages "
                f"(expected {out}/<stage>/checkpoints/iter_NNNNNNNN)"
            )
    finals = []
    previous: Path | None = Path(spec.init) if spec.init else None
    for index in range(first, len(recipe.stages)):
        stage = recipe.stages[index]
        outputs = StageOutputs(out / stage.name)
        if resume_from is not None and resume_from.resolve().parent.parent != outputs.root.resolve():
            previous = outputs.final_model
            continue
        init = previous if (stage.init == "previous" or (index == first and previous is not None)) else None
        if stage.init == "previous" and init is None:
            raise AnomaskError(
                f"stage {stage.name!r} of recipe {recipe.name!r} fine-tunes a trained model: "
                "run the earlier stages first or pass --init CHECKPOINT"
            )
        stamp = stage_stamp(stage, init)
        if resume and resume_from is None and outputs.final_model.is_file():
            if _stamp_of(outputs.final_model) == stamp:
                _log(dist, f"stage {stage.name!r} has finished: {outputs.final_model}")
                previous = outputs.final_model
                continue
            _log(
                dist,
                f"stage {stage.name!r}: {outputs.final_model} was trained with other settings or from another "
                "model than this run's: training the stage again",
            )
        data = build_train_data(stage, dist)
        model, metadata = prepare_model(stage, data.classes, init, recipe, command)
        metadata = replace(metadata, extra={**metadata.extra, STAMP: stamp})
        trainer = Trainer(stage, model, metadata, data, outputs, device, dist, progress=progress)
        checkpoint = resume_from
        if resume and checkpoint is None:
            found = latest_intact(outputs.checkpoints)
            checkpoint = found[0] if found else None
        if checkpoint is not None:
            if _stamp_of(checkpoint / MODEL_FILE) != stamp:
                raise AnomaskError(
                    f"{checkpoint}: written with other settings or from another model than {out / RUN_FILE} says; "
                    f"start again with --overwrite or choose another --out"
                )
            trainer.load_state(checkpoint)
            _log(
                dist,
                f"stage {stage.name!r}: continuing from {checkpoint} (iteration {trainer.iteration} of "
                f"{stage.solver.iterations})",
            )
        elif resume:
            _log(dist, f"stage {stage.name!r}: no checkpoint in {outputs.checkpoints}: training it from the start")
        resume_from = None
        previous = trainer.fit()
        finals.append(previous)
    return finals
