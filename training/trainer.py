"""The one training loop. Every recipe stage runs through :class:`Trainer`; recipes differ
only in their :class:`StageConfig`.

Per iteration: the stateless sampler names this process's share of the global batch,
the samples are loaded (augmented/pasted by their own seeded generators), targets built,
the model run (float16 autocast on CUDA only), the criterion evaluated with per-sample
seeds, gradients clipped (full-model L2 norm) and AdamW stepped under the poly schedule.
Periodically: validation through the heads (rank 0), checkpoints (rank 0, atomic, keep
last k + best), TensorBoard scalars and a ``metrics.jsonl`` loss log. ``resume`` restores
weights, optimizer, scheduler, grad scaler, RNG states and the iteration; data order and
loss points are functions of (seed, iteration), so the continued run is bitwise the same
as an uninterrupted one on CPU.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

from anomask.errors import AnomaskError
from anomask.files import write_bytes_atomic
from anomask.models import ModelMetadata, load_checkpoint
from anomask.progress import Progress
from anomask.training import distributed
from anomask.training.checkpoints import (
    MODEL_FILE,
    checkpoint_iteration,
    checkpoint_name,
    prune,
    read_state,
    remove_temporaries,
    write_model_dir,
)
from anomask.training.config import StageConfig
from anomask.training.criterion import MaskCriterion
from anomask.training.data_pipeline import BatchLoader, TrainData
from anomask.training.optim import build_optimizer, build_scheduler
from anomask.training.per_pixel_loss import PerPixelCriterion
from anomask.training.sampler import StreamSampler
from anomask.training.seeding import capture_rng_state, restore_rng_state
from anomask.training.targets import TargetSpec, build_batch_targets
from anomask.training.validation import CALIBRATION_TPR, ValidationResult, normalise, score_name, validate

LOWER_IS_BETTER = {"fpr95"}


@dataclass(frozen=True)
class StageOutputs:
    """Where a stage writes (all under its own folder)."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def final_model(self) -> Path:
        return self.final / MODEL_FILE

    @property
    def metrics_log(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


def build_criterion(stage: StageConfig, metadata: ModelMetadata) -> nn.Module:
    config = metadata.architecture
    if config.meta_arch == "per_pixel":
        return PerPixelCriterion(config.num_classes, stage.per_pixel_loss)
    return MaskCriterion(config.num_classes, config.num_outputs, stage.loss)


def _better(metric: str, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if metric in LOWER_IS_BETTER else value > best


class Trainer:
    """Trains ``model`` for one stage. ``model``/``metadata`` are the starting point
    (fresh, converted or loaded by the caller); ``resume_from`` a checkpoint folder."""

    def __init__(
        self,
        stage: StageConfig,
        model: nn.Module,
        metadata: ModelMetadata,
        data: TrainData,
        outputs: StageOutputs,
        device: torch.device,
        dist: distributed.DistInfo,
        progress: bool = True,
    ) -> None:
        self.stage = stage
        self.solver = stage.solver
        self.model = model.to(device)
        self.metadata = metadata
        self.data = data
        self.outputs = outputs
        self.device = device
        self.dist = dist
        self.progress = progress
        self.amp = bool(stage.solver.amp and device.type == "cuda")
        if dist.world_size > 1 and device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.criterion = build_criterion(stage, metadata).to(device)
        self.spec = TargetSpec(tuple(c.is_thing for c in metadata.classes), metadata.architecture.negative_class)
        self.optimizer = build_optimizer(self.model, stage.solver)
        self.scheduler = build_scheduler(self.optimizer, stage.solver)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.sampler = StreamSampler(len(data.train), stage.solver.batch_size, stage.seed, dist.rank, dist.world_size)
        self.iteration = 0
        self.best: float | None = None
        self.thresholds: dict[str, float] = dict(metadata.thresholds)
        self.calibration: dict[str, Any] | None = metadata.extra.get("calibration")
        """Where ``thresholds`` were calibrated (``metadata.extra["calibration"]``)."""
        self.last_metrics: dict[str, float] = {}
        self.network: nn.Module = self.model
        if dist.world_size > 1:
            # CPU (gloo) keeps per-process BatchNorm statistics: SyncBatchNorm is GPU-only.
            self.network = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )

    # -- state -----------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        """What must not change between a checkpoint and its resume."""
        return {"stage": json.dumps(self.stage.to_dict(), sort_keys=True), "dataset_size": len(self.data.train)}

    def state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            # Data order is a function of these and the iteration (see sampler.py); any
            # number of processes continues it, as long as the global batch is the same.
            "data_order": {
                "seed": self.stage.seed,
                "global_batch": self.solver.batch_size,
                "dataset_size": len(self.data.train),
                "next_iteration": self.iteration,
            },
            "best": self.best,
            "thresholds": self.thresholds,
            "calibration": self.calibration,
            "last_metrics": self.last_metrics,
            "identity": self._identity(),
            # CPU kernels split their reductions by thread, so only the same count resumes bitwise.
            "torch_threads": torch.get_num_threads() if self.device.type == "cpu" else None,
        }

    def load_state(self, directory: Path) -> None:
        """Resume from a checkpoint folder: weights, optimizer, scheduler, RNG, iteration."""
        state = read_state(directory)
        if state["identity"] != self._identity():
            raise AnomaskError(
                f"{directory}: this checkpoint was written with a different stage config or dataset; "
                "resume with the same recipe, preset and --set options (or start a new --out folder)"
            )
        loaded, _ = load_checkpoint(directory / MODEL_FILE)
        self.model.load_state_dict(loaded.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        threads = state.get("torch_threads")
        if threads is not None and self.device.type == "cpu" and threads != torch.get_num_threads():
            print(
                f"warning: {directory} was written with {threads} torch threads, this process has "
                f"{torch.get_num_threads()}: the run continues, but not bitwise as an uninterrupted run "
                "(set OMP_NUM_THREADS to match)",
                file=sys.stderr,
            )
        self.iteration = int(state["iteration"])
        self.best = state["best"]
        self.thresholds = dict(state["thresholds"])
        self.calibration = state.get("calibration")
        self.last_metrics = dict(state["last_metrics"])
        if self.iteration != checkpoint_iteration(directory):
            raise AnomaskError(f"{directory}: folder name and recorded iteration {self.iteration} disagree")

    def _metadata(self) -> ModelMetadata:
        extra = dict(self.metadata.extra)
        if self.calibration is not None:
            extra["calibration"] = dict(self.calibration)
        return replace(self.metadata, thresholds=dict(self.thresholds), extra=extra)

    # -- one step ----------------------------------------------------------------------
    def _step(self, samples: list[dict], seeds: list[int]) -> dict[str, float]:
        images = normalise(np.stack([s["image"] for s in samples]), self.metadata, self.device)
        targets = [t.to(self.device) for t in build_batch_targets(samples, self.spec)]
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs = self.network(images)
        losses = self.criterion(outputs, targets, seeds)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise AnomaskError(
                f"loss is {float(total)} at iteration {self.iteration}: training diverged "
                "(lower solver.lr or enable solver.clip_grad_norm)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.tensor(0.0)
        if self.solver.clip_grad_norm > 0:
            params = [p for p in self.model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.solver.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        values = torch.stack([total.detach().float()] + [v.detach().float() for v in losses.values()])
        values = distributed.all_reduce_sum(values) / self.dist.world_size
        logged = {"loss": float(values[0])}
        logged.update({name: float(v) for name, v in zip(losses, values[1:])})
        logged["grad_norm"] = float(grad_norm)
        logged["lr"] = max((group["lr"] for group in self.optimizer.param_groups), default=0.0)  # the base LR
        return logged

    # -- periodic work (rank 0) --------------------------------------------------------
    def validate(self) -> ValidationResult:
        result = validate(
            self.model, self._metadata(), self.data.val, self.data.anomaly, self.stage.validation, self.device
        )
        self.thresholds.update(result.thresholds)
        if result.thresholds:
            # Which images set them: ``anomask eval`` uses them only on other images.
            self.calibration = {
                **(self.data.anomaly_source or {}),
                "tpr": CALIBRATION_TPR,
                "images": result.calibration_images,
                "score": score_name(self.metadata, self.stage.validation),
            }
        self.last_metrics = dict(result.metrics)
        return result

    def save_checkpoint(self) -> Path:
        target = self.outputs.checkpoints / checkpoint_name(self.iteration)
        write_model_dir(target, self.model, self._metadata(), self.state())
        read_state(target)  # verify before older checkpoints go
        prune(self.outputs.checkpoints, self.stage.checkpoint.keep_last)
        return target

    def _maybe_best(self) -> None:
        metric = self.stage.checkpoint.best_metric
        value = self.last_metrics.get(metric)
        if value is None or not _better(metric, value, self.best):
            return
        self.best = value
        best = json.dumps({"iteration": self.iteration, metric: value}) + "\n"
        write_model_dir(self.outputs.best, self.model, self._metadata(), None, {"best.json": best})

    def _log(self, writer: SummaryWriter | None, values: dict[str, float], prefix: str) -> None:
        if writer is None:
            return
        for name, value in values.items():
            writer.add_scalar(f"{prefix}/{name}", value, self.iteration)
        with open(self.outputs.metrics_log, "a") as f:
            f.write(json.dumps({"iteration": self.iteration, "kind": prefix, **values}) + "\n")

    def _truncate_log(self) -> None:
        """Drop log lines of iterations after the resume point (a killed run wrote them)."""
        path = self.outputs.metrics_log
        if not path.is_file():
            return
        kept = [
            line for line in path.read_text().splitlines() if line and json.loads(line)["iteration"] <= self.iteration
        ]
        write_bytes_atomic(path, "".join(line + "\n" for line in kept).encode())

    # -- the loop ----------------------------------------------------------------------
    def fit(self) -> Path:
        """Train to ``solver.iterations``; returns ``final/model.safetensors``."""
        main = self.dist.is_main
        writer = None
        if main:
            self.outputs.root.mkdir(parents=True, exist_ok=True)
            for folder in (self.outputs.root, self.outputs.checkpoints):
                remove_temporaries(folder)
            self._truncate_log()
            writer = SummaryWriter(str(self.outputs.tensorboard), purge_step=self.iteration or None)
        total = self.solver.iterations
        bar = Progress(self.stage.name, total, self.iteration, main and self.progress)
        loader = BatchLoader(self.data.train, self.sampler, self.iteration, total, self.stage.data.num_workers)
        self.model.train()
        started = time.monotonic()
        try:
            for items, samples in loader:
                values = self._step(samples, [item.seed for item in items])
                self.iteration += 1
                if main:
                    self._log(writer, values, "train")
                    bar.update(values["loss"])
                done = self.iteration == total
                every = self.stage.validation.every
                if main and (done or (every and self.iteration % every == 0)):
                    result = self.validate()
                    self._log(writer, {**result.metrics, **result.thresholds}, "val")
                    self._maybe_best()
                    bar.write(
                        f"[{self.stage.name}] iteration {self.iteration}: "
                        + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
                    )
                if main and (done or self.iteration % self.stage.checkpoint.every == 0):
                    self.save_checkpoint()
                distributed.barrier()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if main:
            summary = {
                "iterations": self.iteration,
                "seconds": time.monotonic() - started,
                **self.last_metrics,
                "thresholds": self.thresholds,
                "calibration": self.calibration,
            }
            summary_text = json.dumps(summary, indent=1) + "\n"
            write_model_dir(self.outputs.final, self.model, self._metadata(), None, {"summary.json": summary_text})
        distributed.barrier()
        return self.outputs.final_model
