"""K+1 -> K+2: add UNO's negative-objectness class to a trained Mask2Former
(UNO (Delić et al., 2024), §4, §6.1: the closed-set model's mask-wide classifier is extended
to K+2 classes, then fine-tuned on pasted negatives)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from anomask.errors import AnomaskError
from anomask.models.metadata import ModelMetadata
from anomask.models.network import Mask2Former


def add_negative_class(model: Mask2Former, metadata: ModelMetadata) -> tuple[Mask2Former, ModelMetadata]:
    """Insert a zero-initialised row at index K (before no-object, UNO (Delić et al., 2024),
    §4) into the class head, in place; returns the model and metadata with
    ``negative_class=True``.

    The K known logits and the no-object logit keep their weights, so they are unchanged at
    initialisation; the new logit starts at exactly 0 for every query."""
    config = model.config
    if not isinstance(model, Mask2Former):
        raise AnomaskError(f"a negative class needs a mask2former model, not {config.meta_arch}")
    if config.negative_class:
        raise AnomaskError("the model already has a negative class (K+2 outputs)")
    if metadata.architecture != config:
        raise AnomaskError("metadata.architecture does not match the model's config")
    old = model.predictor.class_embed
    k = config.num_classes
    new = nn.Linear(old.in_features, old.out_features + 1).to(old.weight.device, old.weight.dtype)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
        new.weight[:k] = old.weight[:k]
        new.bias[:k] = old.bias[:k]
        new.weight[k + 1] = old.weight[k]
        new.bias[k + 1] = old.bias[k]
    new.requires_grad_(old.weight.requires_grad)
    model.predictor.class_embed = new
    model.config = replace(config, negative_class=True)
    return model, replace(metadata, architecture=model.config)
