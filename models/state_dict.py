"""Strict state-dict loading with errors that name the offending keys."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from anomask.errors import AnomaskError

MAX_LISTED = 12


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    return shown + (f" (and {len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else "")


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    source: str,
    origins: Mapping[str, str] | None = None,
) -> None:
    """Raise an AnomaskError naming every missing key, unexpected key and shape mismatch;
    ``origins`` (our key -> source key) adds where a renamed tensor came from."""
    origins = origins or {}

    def named(key: str) -> str:
        return f"{key} (from {origins[key]})" if key in origins else key

    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [named(k) for k in state if k not in expected]
    mismatched = [
        f"{named(k)} is {tuple(state[k].shape)} in {source} but {tuple(expected[k].shape)} in the model"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        problems.append("shape mismatch: " + _listing(mismatched))
    if missing:
        problems.append("missing keys: " + _listing(missing))
    if unexpected:
        problems.append("unexpected keys: " + _listing(unexpected))
    if problems:
        raise AnomaskError(f"{source}: weights do not fit the model; " + "; ".join(problems))


def load_state_dict_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` all or nothing: every key present, none extra, every
    shape equal; otherwise nothing is loaded and the error names the keys."""
    check_state_dict(module.state_dict(), state, source)
    module.load_state_dict(dict(state), strict=True)
