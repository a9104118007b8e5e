"""The networks: Mask2Former (mask classification) and the per-pixel two-head baseline of
noisy negatives (Bevandić et al., 2022), both on backbone + deformable pixel decoder, built
from a :class:`ModelConfig`."""

from __future__ import annotations

import torch
from torch import nn

from anomask.errors import AnomaskError
from anomask.models.backbones import build_backbone
from anomask.models.config import ModelConfig
from anomask.models.pixel_decoder import GROUPS, MSDeformAttnPixelDecoder
from anomask.models.transformer_decoder import MaskedTransformerDecoder

PACKAGED_WEIGHTS = ("efficientnet_lite0",)
"""Backbones whose ImageNet weights come with anomask's dependencies (``pretrained_backbone``)."""


class SegmentationNetwork(nn.Module):
    """Backbone + pixel decoder shared by both meta-architectures; ``freeze_backbone``
    stops the backbone's gradients and keeps its BatchNorm statistics fixed (eval mode)
    even while the rest trains (Mask2Anomaly trains with a frozen encoder)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, config.window_size)
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            self.backbone.channels,
            dim=config.hidden_dim,
            mask_dim=config.mask_dim,
            num_heads=config.num_heads,
            num_layers=config.enc_layers,
            dim_feedforward=config.enc_dim_feedforward,
            num_points=config.enc_num_points,
        )
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> SegmentationNetwork:
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()
        return self


class Mask2Former(SegmentationNetwork):
    """``model(images)`` with normalised ``[B, 3, H, W]`` images (H, W multiples of 32)
    returns ``{"pred_logits": [B, N, num_outputs], "pred_masks": [B, N, H/4, W/4]}`` plus
    ``"aux_outputs"`` (one ``{pred_logits, pred_masks}`` per earlier prediction, first to
    last) in training mode or when ``aux=True``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.predictor = MaskedTransformerDecoder(
            dim=config.hidden_dim,
            mask_dim=config.mask_dim,
            num_queries=config.num_queries,
            num_heads=config.num_heads,
            dim_feedforward=config.dim_feedforward,
            num_layers=config.dec_layers,
            num_outputs=config.num_outputs,
            global_masked_attention=config.global_masked_attention,
        )

    def forward(self, images: torch.Tensor, aux: bool | None = None) -> dict:
        mask_features, multi_scale = self.pixel_decoder(self.backbone(images))
        predictions = self.predictor(multi_scale, mask_features)
        logits, masks = predictions[-1]
        out: dict = {"pred_logits": logits, "pred_masks": masks}
        if self.training if aux is None else aux:
            out["aux_outputs"] = [{"pred_logits": c, "pred_masks": m} for c, m in predictions[:-1]]
        return out


def _pixel_head(dim: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(dim, dim, 3, padding=1, bias=False),
        nn.GroupNorm(GROUPS, dim),
        nn.ReLU(),
        nn.Conv2d(dim, out_channels, 1),
    )


class PerPixelTwoHead(SegmentationNetwork):
    """Noisy negatives (Bevandić et al., 2022), §3.2 (Fig. 3): two heads on shared stride-4
    features, a K-way per-pixel classifier and a binary outlier detector (logit of
    P(outlier)).

    The paper's features come from a ladder-style DenseNet; here they are the same mask
    features Mask2Former uses, so the two paradigms differ only after the pixel decoder.
    Each head is 3x3 conv + GroupNorm + ReLU + 1x1 conv (our choice: the paper does not fix
    the head's depth). Returns ``{"sem_logits": [B, K, H/4, W/4],
    "outlier_logits": [B, 1, H/4, W/4]}``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.sem_head = _pixel_head(config.mask_dim, config.num_classes)
        self.outlier_head = _pixel_head(config.mask_dim, 1)

    def forward(self, images: torch.Tensor) -> dict:
        mask_features, _ = self.pixel_decoder(self.backbone(images))
        return {"sem_logits": self.sem_head(mask_features), "outlier_logits": self.outlier_head(mask_features)}


def build_model(config: ModelConfig, load_pretrained: bool = True) -> SegmentationNetwork:
    """A freshly initialised network for ``config`` (``config.meta_arch`` picks which), its
    backbone loaded with the packaged ImageNet weights when ``config.pretrained_backbone``
    (``load_pretrained=False``: skip that, for callers that load a whole checkpoint next)."""
    network = _build(config)
    if config.pretrained_backbone and config.backbone not in PACKAGED_WEIGHTS:
        raise AnomaskError(
            f"pretrained_backbone: no packaged weights for {config.backbone} (only for "
            f"{', '.join(PACKAGED_WEIGHTS)}); import its weights with anomask convert, or set pretrained_backbone false"
        )
    if config.pretrained_backbone and load_pretrained:
        # imported here: anomask.models.convert builds networks with this module
        from anomask.models.convert.efficientnet_lite import load_backbone_weights

        load_backbone_weights(network)
    return network


def _build(config: ModelConfig) -> SegmentationNetwork:
    if config.hidden_dim % GROUPS or config.mask_dim % GROUPS:
        raise AnomaskError(f"hidden_dim and mask_dim must be multiples of {GROUPS} (GroupNorm groups)")
    if config.hidden_dim % config.num_heads:
        raise AnomaskError(f"hidden_dim {config.hidden_dim} is not divisible by num_heads {config.num_heads}")
    if config.meta_arch == "mask2former":
        return Mask2Former(config)
    if config.meta_arch == "per_pixel":
        if config.negative_class:
            raise AnomaskError("per_pixel models have a separate outlier head; negative_class applies to mask2former")
        return PerPixelTwoHead(config)
    raise AnomaskError(f"unknown meta_arch {config.meta_arch!r}; valid: mask2former, per_pixel")
