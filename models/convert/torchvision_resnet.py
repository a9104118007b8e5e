"""torchvision-format ResNet weights (ImageNet, Barlow Twins, ...) for the backbone.

The backbone has torchvision's exact key layout, so keys map one to one under
``backbone.``; the ImageNet classifier ``fc.*`` is dropped, and a ``module.`` prefix
(DataParallel) or a prefix given by the user is stripped first."""

from __future__ import annotations

import torch

from anomask.errors import AnomaskError
from anomask.models.convert.keymap import Ignore, Mapped, Rule, rename

RULES = [Rule(r"((?:conv1|bn1|layer[1-4])\..+)", r"backbone.\1")]
IGNORES = [Ignore(r"fc\.(weight|bias)", "ImageNet classifier, not part of the backbone")]


def strip_prefix(state: dict[str, torch.Tensor], prefix: str | None, source: str) -> dict[str, torch.Tensor]:
    """Remove ``prefix`` (or ``module.`` when every key has it) from every key."""
    if prefix is None and state and all(k.startswith("module.") for k in state):
        prefix = "module."
    if not prefix:
        return state
    kept = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not kept:
        raise AnomaskError(f"{source}: no key starts with {prefix!r}")
    return kept


def backbone_name(state: dict[str, torch.Tensor], source: str) -> str:
    if "layer1.0.conv3.weight" in state:
        return "resnet50"
    if "layer1.0.conv2.weight" in state:
        return "resnet18"
    raise AnomaskError(f"{source}: not a torchvision ResNet state dict (no layer1.0.conv2.weight)")


def convert_state(state: dict[str, torch.Tensor], source: str) -> Mapped:
    return rename(state, RULES, IGNORES, source)
