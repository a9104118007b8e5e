"""Rename foreign state-dict keys to anomask's with ordered regex rules.

Every source key must match a rule or an ignore pattern (unknown keys are an error, named);
rules with a ``part`` gather split tensors (separate q, k, v projections) into one packed
tensor. The result is then checked against the model: missing keys and shape mismatches
are errors naming both our key and the source key it came from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from anomask.errors import AnomaskError
from anomask.models.state_dict import MAX_LISTED, check_state_dict


@dataclass(frozen=True)
class Rule:
    pattern: str
    """Regular expression matched against the whole source key."""
    target: str | Callable[[re.Match], str]
    """``re`` replacement (template or function of the match) giving our key."""
    part: int | None = None
    """For a split source (q/k/v): this tensor's index in the packed target (dim 0)."""
    parts: int = 3


@dataclass(frozen=True)
class Ignore:
    pattern: str
    reason: str


@dataclass
class Mapped:
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    """Our key -> the source key(s) it came from (for error messages)."""
    ignored: dict[str, str] = field(default_factory=dict)
    """Source key -> why it was dropped."""
    filled: list[str] = field(default_factory=list)
    """Our keys the source lacks but that carry no learnt value (BatchNorm counters)."""


def rename(state: Mapping[str, torch.Tensor], rules: Sequence[Rule], ignores: Sequence[Ignore], source: str) -> Mapped:
    compiled = [(re.compile(rule.pattern), rule) for rule in rules]
    ignored = [(re.compile(ig.pattern), ig.reason) for ig in ignores]
    mapped = Mapped()
    packed: dict[str, tuple[int, dict[int, tuple[str, torch.Tensor]]]] = {}
    unknown = []
    for key, tensor in state.items():
        reason = next((why for regex, why in ignored if regex.fullmatch(key)), None)
        if reason is not None:
            mapped.ignored[key] = reason
            continue
        match = next(((regex, rule) for regex, rule in compiled if regex.fullmatch(key)), None)
        if match is None:
            unknown.append(key)
            continue
        regex, rule = match
        target = regex.sub(rule.target, key)
        if rule.part is None:
            mapped.state[target] = tensor
            mapped.origins[target] = key
        else:
            packed.setdefault(target, (rule.parts, {}))[1][rule.part] = (key, tensor)
    if unknown:
        more = f" (and {len(unknown) - MAX_LISTED} more)" if len(unknown) > MAX_LISTED else ""
        raise AnomaskError(
            f"{source}: unknown keys (not part of a supported architecture): {', '.join(unknown[:MAX_LISTED])}{more}"
        )
    for target, (count, parts) in packed.items():
        if len(parts) != count:
            have = ", ".join(key for key, _ in parts.values())
            raise AnomaskError(f"{source}: {target} packs {count} tensors but only {have} are present")
        mapped.state[target] = torch.cat([parts[i][1] for i in range(count)], dim=0)
        mapped.origins[target] = " + ".join(parts[i][0] for i in range(count))
    return mapped


def load_mapped(module: nn.Module, mapped: Mapped, source: str, prefix: str = "") -> None:
    """Load ``mapped`` into ``module`` all or nothing. With ``prefix`` (e.g. ``"backbone."``
    for backbone-only weights) only the keys under it are expected; the rest keeps its
    initialisation. BatchNorm ``num_batches_tracked`` counters the source lacks are set to
    0 (they hold no learnt value) and listed in ``mapped.filled``."""
    expected = {k: v for k, v in module.state_dict().items() if k.startswith(prefix)}
    state = dict(mapped.state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
            mapped.filled.append(key)
    check_state_dict(expected, state, source, mapped.origins)
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=not prefix)
