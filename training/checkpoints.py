"""Trainer checkpoints: one folder per saved iteration, written atomically.

``iter_00000100/`` holds ``model.safetensors`` (the models package's checkpoint: weights
+ metadata, usable by ``anomask eval``/``export`` as is) and ``trainer_state.pt`` (optimizer,
scheduler, grad scaler, iteration, RNG states, data-order parameters, the SHA-256 of the
model file), loaded with ``torch.load(weights_only=True)`` so no pickle code runs.

Both files are written into a hidden temporary folder that is renamed into place only
when complete, so a crash (even SIGKILL) mid-write leaves the previous checkpoints as
they were. On reading, a truncated/corrupted state file or a model file whose SHA-256
differs from the recorded one is refused with an error naming the file. Old checkpoints
are pruned (keep the last k) only after the new one has been read back and verified.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from anomask.errors import AnomaskError
from anomask.files import atomic_dir
from anomask.models import ModelMetadata, save_checkpoint

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
STATE_FORMAT = "anomask-trainer-state-1"
_NAME = re.compile(r"^iter_(\d{8})$")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:08d}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model_dir(
    target: Path,
    model: nn.Module,
    metadata: ModelMetadata,
    state: dict[str, Any] | None,
    texts: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model.safetensors`` (+ ``trainer_state.pt`` when ``state`` is given, + the
    ``texts`` files, e.g. ``summary.json``) into ``target`` atomically
    (``anomask.files.atomic_dir``): the folder appears complete or not at all."""
    with atomic_dir(target) as tmp:
        model_path = save_checkpoint(tmp / MODEL_FILE, model, metadata)
        if state is not None:
            full = {**state, "format": STATE_FORMAT, "model_sha256": file_sha256(model_path)}
            torch.save(full, tmp / STATE_FILE)
        for name, text in (texts or {}).items():
            (tmp / name).write_text(text)
    return target


def read_state(directory: Path) -> dict[str, Any]:
    """The verified trainer state of a checkpoint folder (clear error if damaged)."""
    directory = Path(directory)
    state_path, model_path = directory / STATE_FILE, directory / MODEL_FILE
    for path in (state_path, model_path):
        if not path.is_file():
            raise AnomaskError(f"{directory}: not a trainer checkpoint ({path.name} is missing)")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged zip/pickle data
        raise AnomaskError(
            f"{state_path}: corrupted or truncated trainer state, refused ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise AnomaskError(f"{state_path}: not an anomask trainer state (format {STATE_FORMAT} expected)")
    if file_sha256(model_path) != state["model_sha256"]:
        raise AnomaskError(
            f"{model_path}: corrupted or truncated, refused (its SHA-256 differs from the one recorded when it "
            f"was saved)"
        )
    return state


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (temporary folders excluded)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def checkpoint_iteration(directory: Path) -> int:
    match = _NAME.match(Path(directory).name)
    if not match:
        raise AnomaskError(f"{directory}: not a checkpoint folder name (iter_NNNNNNNN expected)")
    return int(match.group(1))


def latest_intact(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint and its state; a damaged newest one is an error that names the
    previous intact checkpoint (never silently skipped: a resume must not lose work unseen)."""
    checkpoints = list_checkpoints(root)
    if not checkpoints:
        return None
    try:
        return checkpoints[-1], read_state(checkpoints[-1])
    except AnomaskError as error:
        for older in reversed(checkpoints[:-1]):
            try:
                read_state(older)
            except AnomaskError:
                continue
            raise AnomaskError(
                f"{error}. The previous checkpoint {older} is intact: resume from it with --resume {older}"
            ) from error
        raise AnomaskError(f"{error}. No intact older checkpoint in {root}") from error


def remove_temporaries(root: Path) -> None:
    """Delete hidden half-written folders a killed process left (``.iter_*.tmp.*``)."""
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(".") and (".tmp." in path.name or ".old." in path.name) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def prune(root: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; returns what was deleted."""
    checkpoints = list_checkpoints(root)
    doomed = checkpoints[: max(len(checkpoints) - max(keep_last, 1), 0)]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed
