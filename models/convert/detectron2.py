"""Official detectron2-format Mask2Former checkpoints (facebookresearch/Mask2Former, and
the Mask2Anomaly and UNO/EAM repositories built on it).

Keys: ``backbone.*`` (detectron2 ResNet ``stem``/``resN`` or the original Swin layout),
``sem_seg_head.pixel_decoder.*`` (``MSDeformAttnPixelDecoder``) and
``sem_seg_head.predictor.*`` (``MultiScaleMaskedTransformerDecoder``; Mask2Anomaly's GMA
decoder adds ``multihead_attn_foreground``/``multihead_attn_background``). The checkpoint
carries no config, so the architecture is read off tensor shapes; only the number of
attention heads cannot be, and comes from an option (8 in every official config).
detectron2 ResNets must have the stride in the 3x3 conv (``STRIDE_IN_1X1: False``, as in
Mask2Former's configs) to match torchvision's layout.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from anomask.errors import AnomaskError
from anomask.models.convert.keymap import Ignore, Mapped, Rule, rename
from anomask.models.pixel_decoder import NUM_LEVELS

_WB = r"(weight|bias)"
_PD = r"sem_seg_head\.pixel_decoder\."
_P = r"sem_seg_head\.predictor\."
_RES = r"backbone\.res(\d)\.(\d+)\."


def _res(m: re.Match) -> str:
    return f"backbone.layer{int(m[1]) - 1}.{m[2]}"


RULES = [
    # detectron2 ResNet -> torchvision names (norms are children of their convs there)
    Rule(r"backbone\.stem\.conv1\.weight", "backbone.conv1.weight"),
    Rule(r"backbone\.stem\.conv1\.norm\.(\w+)", r"backbone.bn1.\1"),
    Rule(_RES + r"conv(\d)\.weight", lambda m: f"{_res(m)}.conv{m[3]}.weight"),
    Rule(_RES + r"conv(\d)\.norm\.(\w+)", lambda m: f"{_res(m)}.bn{m[3]}.{m[4]}"),
    Rule(_RES + r"shortcut\.weight", lambda m: f"{_res(m)}.downsample.0.weight"),
    Rule(_RES + r"shortcut\.norm\.(\w+)", lambda m: f"{_res(m)}.downsample.1.{m[3]}"),
    # Swin: already the original layout
    Rule(r"backbone\.(patch_embed\.(?:proj|norm)\.\w+)", r"backbone.\1"),
    Rule(
        r"backbone\.(layers\.\d+\.blocks\.\d+\.(?:norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.\w+)",
        r"backbone.\1",
    ),
    Rule(r"backbone\.(layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table)", r"backbone.\1"),
    Rule(r"backbone\.(layers\.\d+\.downsample\.(?:reduction|norm)\.\w+)", r"backbone.\1"),
    Rule(r"backbone\.(norm[0-3]\.\w+)", r"backbone.\1"),
    # pixel decoder
    Rule(_PD + r"input_proj\.(\d)\.([01])\." + _WB, r"pixel_decoder.input_proj.\1.\2.\3"),
    Rule(_PD + r"transformer\.level_embed", "pixel_decoder.level_embed"),
    Rule(
        _PD + r"transformer\.encoder\.layers\.(\d+)\.(self_attn\.\w+|norm1|linear1|linear2|norm2)\." + _WB,
        r"pixel_decoder.encoder.layers.\1.\2.\3",
    ),
    Rule(_PD + r"mask_features\." + _WB, r"pixel_decoder.mask_features.\1"),
    Rule(_PD + r"adapter_1\.weight", "pixel_decoder.lateral_conv.0.weight"),
    Rule(_PD + r"adapter_1\.norm\." + _WB, r"pixel_decoder.lateral_conv.1.\1"),
    Rule(_PD + r"layer_1\.weight", "pixel_decoder.output_conv.0.weight"),
    Rule(_PD + r"layer_1\.norm\." + _WB, r"pixel_decoder.output_conv.1.\1"),
    # transformer decoder: three ModuleLists -> one module per layer
    Rule(
        _P
        + r"transformer_cross_attention_layers\.(\d+)\.(?:multihead_attn|multihead_attn_foreground)\.(\w+(?:\.\w+)?)",
        r"predictor.layers.\1.cross_attn.\2",
    ),
    Rule(
        _P + r"transformer_cross_attention_layers\.(\d+)\.multihead_attn_background\.(\w+(?:\.\w+)?)",
        r"predictor.layers.\1.cross_attn_bg.\2",
    ),
    Rule(_P + r"transformer_cross_attention_layers\.(\d+)\.norm\." + _WB, r"predictor.layers.\1.norm1.\2"),
    Rule(
        _P + r"transformer_self_attention_layers\.(\d+)\.self_attn\.(\w+(?:\.\w+)?)",
        r"predictor.layers.\1.self_attn.\2",
    ),
    Rule(_P + r"transformer_self_attention_layers\.(\d+)\.norm\." + _WB, r"predictor.layers.\1.norm2.\2"),
    Rule(_P + r"transformer_ffn_layers\.(\d+)\.(linear1|linear2)\." + _WB, r"predictor.layers.\1.\2.\3"),
    Rule(_P + r"transformer_ffn_layers\.(\d+)\.norm\." + _WB, r"predictor.layers.\1.norm3.\2"),
    Rule(_P + r"(query_feat|query_embed|level_embed)\.weight", r"predictor.\1.weight"),
    Rule(_P + r"(decoder_norm|class_embed)\." + _WB, r"predictor.\1.\2"),
    Rule(_P + r"mask_embed\.layers\.(\d)\." + _WB, r"predictor.mask_embed.layers.\1.\2"),
]
IGNORES = [
    Ignore(r"pixel_(mean|std)", "input normalisation, stored in the metadata"),
    Ignore(r"criterion\.empty_weight", "loss buffer (no-object class weight), not a network weight"),
    Ignore(
        r"backbone\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index",
        "derived buffer, rebuilt from the window size",
    ),
    Ignore(
        _P + r"transformer_cross_attention_layers\.\d+\.fusion_layer\.\w+",
        "Mask2Anomaly's fusion_layer, defined but unused in its forward",
    ),
]

_SWINS = {(96, 6): "swin_t", (96, 18): "swin_s", (128, 18): "swin_b"}


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m[1] for key in state if (m := regex.match(key))})


def _shape(state: dict[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise AnomaskError(f"{source}: missing key {key} (not a detectron2 Mask2Former checkpoint?)")
    return tuple(state[key].shape)


def backbone_spec(state: dict[str, torch.Tensor], source: str) -> tuple[str, int]:
    """(backbone name, Swin window size) from the backbone keys and shapes."""
    if "backbone.stem.conv1.weight" in state:
        blocks = [_count(state, rf"backbone\.res{n}\.(\d+)\.") for n in (2, 3, 4, 5)]
        bottleneck = "backbone.res2.0.conv3.weight" in state
        if bottleneck and blocks == [3, 4, 6, 3]:
            return "resnet50", 7
        if not bottleneck and blocks == [2, 2, 2, 2]:
            return "resnet18", 7
        raise AnomaskError(f"{source}: unsupported ResNet ({blocks} blocks per stage); supported: ResNet-18, ResNet-50")
    if "backbone.patch_embed.proj.weight" in state:
        embed = _shape(state, "backbone.patch_embed.proj.weight", source)[0]
        depth = _count(state, r"backbone\.layers\.2\.blocks\.(\d+)\.")
        if (embed, depth) not in _SWINS:
            raise AnomaskError(f"{source}: unsupported Swin (embed dim {embed}, {depth} blocks in stage 3)")
        table = _shape(state, "backbone.layers.0.blocks.0.attn.relative_position_bias_table", source)[0]
        return _SWINS[(embed, depth)], (round(table**0.5) + 1) // 2
    raise AnomaskError(f"{source}: no ResNet (backbone.stem.*) or Swin (backbone.patch_embed.*) backbone keys")


def architecture(state: dict[str, torch.Tensor], num_heads: int, source: str) -> dict[str, Any]:
    """``ModelConfig`` fields (all but the class count) read off the tensor shapes."""
    backbone, window = backbone_spec(state, source)
    num_queries, hidden = _shape(state, "sem_seg_head.predictor.query_feat.weight", source)
    conv_dim = _shape(state, "sem_seg_head.pixel_decoder.mask_features.weight", source)[1]
    if conv_dim != hidden:
        raise AnomaskError(
            f"{source}: pixel decoder dim {conv_dim} differs from the decoder's hidden dim {hidden} (unsupported)"
        )
    offsets = _shape(
        state, "sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.attention_weights.weight", source
    )[0]
    if offsets % (num_heads * NUM_LEVELS):
        raise AnomaskError(
            f"{source}: attention weights of size {offsets} do not fit {num_heads} heads; pass --num-heads"
        )
    if any(k.startswith("sem_seg_head.predictor.input_proj.") for k in state):
        raise AnomaskError(f"{source}: decoder input projections (ENFORCE_INPUT_PROJ) are not supported")
    return dict(
        backbone=backbone,
        window_size=window,
        num_queries=num_queries,
        hidden_dim=hidden,
        mask_dim=_shape(state, "sem_seg_head.pixel_decoder.mask_features.weight", source)[0],
        num_heads=num_heads,
        dim_feedforward=_shape(state, "sem_seg_head.predictor.transformer_ffn_layers.0.linear1.weight", source)[0],
        dec_layers=_count(state, r"sem_seg_head\.predictor\.transformer_ffn_layers\.(\d+)\."),
        enc_layers=_count(state, r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\."),
        enc_dim_feedforward=_shape(
            state, "sem_seg_head.pixel_decoder.transformer.encoder.layers.0.linear1.weight", source
        )[0],
        enc_num_points=offsets // (num_heads * NUM_LEVELS),
        global_masked_attention=any("multihead_attn_background" in k for k in state),
    )


def num_outputs(state: dict[str, torch.Tensor], source: str) -> int:
    return _shape(state, "sem_seg_head.predictor.class_embed.weight", source)[0]


def normalisation(state: dict[str, torch.Tensor]) -> dict[str, tuple[float, float, float]]:
    """``mean``/``std`` metadata fields from the ``pixel_mean``/``pixel_std`` buffers."""
    return {
        field: tuple(float(v) for v in state[key].flatten())
        for field, key in (("mean", "pixel_mean"), ("std", "pixel_std"))
        if key in state and state[key].numel() == 3
    }


def convert_state(state: dict[str, torch.Tensor], source: str) -> Mapped:
    return rename(state, RULES, IGNORES, source)
