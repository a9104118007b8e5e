"""Hugging Face ``Mask2FormerForUniversalSegmentation`` folders (``save_pretrained``).

The architecture and the class names come from ``config.json``; the weights from
``model.safetensors`` (optionally sharded with an index) or ``pytorch_model.bin`` (read
with ``weights_only=True``). Backbones: HF ResNet (its ``embedder``/``stages`` layout is
renamed to torchvision's) and HF Swin (old ``attention.self.query`` and new ``q_proj``
namings; q, k, v are packed into one ``qkv`` as in the original Swin).

HF's ``decoder_layers`` counts the prediction made before the first layer (as detectron2's
``DEC_LAYERS``): it builds ``decoder_layers - 1`` layers, our ``dec_layers``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from anomask.errors import AnomaskError
from anomask.models.convert.keymap import Ignore, Mapped, Rule, rename
from anomask.models.convert.weight_files import read_weight_file, tensor_state

# Mask2FormerConfig / ResNetConfig / SwinConfig defaults (transformers 4.x-5.x), for
# config.json files written with only the non-default values.
_M2F_DEFAULTS = {
    "feature_size": 256,
    "mask_feature_size": 256,
    "hidden_dim": 256,
    "encoder_feedforward_dim": 1024,
    "activation_function": "relu",
    "encoder_layers": 6,
    "decoder_layers": 10,
    "num_attention_heads": 8,
    "dim_feedforward": 2048,
    "pre_norm": False,
    "enforce_input_projection": False,
    "common_stride": 4,
    "num_queries": 100,
    "feature_strides": [4, 8, 16, 32],
}
_RESNET_DEFAULTS = {
    "embedding_size": 64,
    "hidden_sizes": [256, 512, 1024, 2048],
    "depths": [3, 4, 6, 3],
    "layer_type": "bottleneck",
    "downsample_in_first_stage": False,
    "downsample_in_bottleneck": False,
}
_SWIN_DEFAULTS = {
    "embed_dim": 96,
    "depths": [2, 2, 6, 2],
    "num_heads": [3, 6, 12, 24],
    "window_size": 7,
    "patch_size": 4,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "use_absolute_embeddings": False,
}
# HF's Mask2Former builds Swin-S when config.json has no backbone_config at all.
_DEFAULT_BACKBONE = {"model_type": "swin", "depths": [2, 2, 18, 2]}
_OUT_FEATURES = ["stage1", "stage2", "stage3", "stage4"]

_RESNETS = {
    ("basic", (2, 2, 2, 2), (64, 128, 256, 512)): "resnet18",
    ("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048)): "resnet50",
}
_SWINS = {
    (96, (2, 2, 6, 2), (3, 6, 12, 24)): "swin_t",
    (96, (2, 2, 18, 2), (3, 6, 12, 24)): "swin_s",
    (128, (2, 2, 18, 2), (4, 8, 16, 32)): "swin_b",
}

_BB = r"model\.pixel_level_module\.encoder\."
_STAGE = _BB + r"encoder\.stages\.(\d+)\.layers\.(\d+)\."
_SWIN = _BB + r"(?:swin\.)?"  # save_pretrained writes the legacy layout without "swin."
_BLOCK = _SWIN + r"encoder\.layers\.(\d+)\.blocks\.(\d+)\."
_PD = r"model\.pixel_level_module\.decoder\."
_TM = r"model\.transformer_module\."
_LAYER = _TM + r"decoder\.layers\.(\d+)\."
_WB = r"(weight|bias)"


def _layer(m) -> str:
    return f"backbone.layer{int(m[1]) + 1}.{m[2]}"


def _block(suffix: str):
    return lambda m: f"backbone.layers.{m[1]}.blocks.{m[2]}.{suffix.format(*m.groups()[2:])}"


RULES = [
    # ResNet: HF embedder/stages -> torchvision conv1/bn1/layerN
    Rule(_BB + r"embedder\.embedder\.convolution\.weight", "backbone.conv1.weight"),
    Rule(_BB + r"embedder\.embedder\.normalization\.(\w+)", r"backbone.bn1.\1"),
    Rule(_STAGE + r"shortcut\.convolution\.weight", lambda m: f"{_layer(m)}.downsample.0.weight"),
    Rule(_STAGE + r"shortcut\.normalization\.(\w+)", lambda m: f"{_layer(m)}.downsample.1.{m[3]}"),
    Rule(_STAGE + r"layer\.(\d)\.convolution\.weight", lambda m: f"{_layer(m)}.conv{int(m[3]) + 1}.weight"),
    Rule(_STAGE + r"layer\.(\d)\.normalization\.(\w+)", lambda m: f"{_layer(m)}.bn{int(m[3]) + 1}.{m[4]}"),
    # Swin: HF names (old and new) -> original Swin names
    Rule(_SWIN + r"embeddings\.patch_embeddings\.projection\." + _WB, r"backbone.patch_embed.proj.\1"),
    Rule(_SWIN + r"embeddings\.norm\." + _WB, r"backbone.patch_embed.norm.\1"),
    Rule(_BLOCK + r"layernorm_before\." + _WB, _block("norm1.{}")),
    Rule(_BLOCK + r"layernorm_after\." + _WB, _block("norm2.{}")),
    Rule(_BLOCK + r"attention\.(?:q_proj|self\.query)\." + _WB, _block("attn.qkv.{}"), part=0),
    Rule(_BLOCK + r"attention\.(?:k_proj|self\.key)\." + _WB, _block("attn.qkv.{}"), part=1),
    Rule(_BLOCK + r"attention\.(?:v_proj|self\.value)\." + _WB, _block("attn.qkv.{}"), part=2),
    Rule(_BLOCK + r"attention\.(?:o_proj|output\.dense)\." + _WB, _block("attn.proj.{}")),
    Rule(
        _BLOCK + r"attention\.(?:relative_position_bias|self)\.relative_position_bias_table",
        _block("attn.relative_position_bias_table"),
    ),
    Rule(_BLOCK + r"(?:mlp\.fc1|intermediate\.dense)\." + _WB, _block("mlp.fc1.{}")),
    Rule(_BLOCK + r"(?:mlp\.fc2|output\.dense)\." + _WB, _block("mlp.fc2.{}")),
    Rule(
        _SWIN + r"encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\." + _WB, r"backbone.layers.\1.downsample.\2.\3"
    ),
    Rule(_BB + r"hidden_states_norms\.stage(\d)\." + _WB, lambda m: f"backbone.norm{int(m[1]) - 1}.{m[2]}"),
    # pixel decoder
    Rule(_PD + r"level_embed", "pixel_decoder.level_embed"),
    Rule(_PD + r"input_projections\.(\d)\.([01])\." + _WB, r"pixel_decoder.input_proj.\1.\2.\3"),
    Rule(
        _PD + r"encoder\.layers\.(\d+)\.self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\." + _WB,
        r"pixel_decoder.encoder.layers.\1.self_attn.\2.\3",
    ),
    Rule(_PD + r"encoder\.layers\.(\d+)\.self_attn_layer_norm\." + _WB, r"pixel_decoder.encoder.layers.\1.norm1.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.fc1\." + _WB, r"pixel_decoder.encoder.layers.\1.linear1.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.fc2\." + _WB, r"pixel_decoder.encoder.layers.\1.linear2.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.final_layer_norm\." + _WB, r"pixel_decoder.encoder.layers.\1.norm2.\2"),
    Rule(_PD + r"mask_projection\." + _WB, r"pixel_decoder.mask_features.\1"),
    Rule(_PD + r"adapter_1\.([01])\." + _WB, r"pixel_decoder.lateral_conv.\1.\2"),
    Rule(_PD + r"layer_1\.([01])\." + _WB, r"pixel_decoder.output_conv.\1.\2"),
    # transformer decoder
    Rule(_TM + r"queries_embedder\.weight", "predictor.query_embed.weight"),
    Rule(_TM + r"queries_features\.weight", "predictor.query_feat.weight"),
    Rule(_TM + r"level_embed\.weight", "predictor.level_embed.weight"),
    Rule(_LAYER + r"self_attn\.q_proj\." + _WB, r"predictor.layers.\1.self_attn.in_proj_\2", part=0),
    Rule(_LAYER + r"self_attn\.k_proj\." + _WB, r"predictor.layers.\1.self_attn.in_proj_\2", part=1),
    Rule(_LAYER + r"self_attn\.v_proj\." + _WB, r"predictor.layers.\1.self_attn.in_proj_\2", part=2),
    Rule(_LAYER + r"self_attn\.out_proj\." + _WB, r"predictor.layers.\1.self_attn.out_proj.\2"),
    Rule(_LAYER + r"self_attn_layer_norm\." + _WB, r"predictor.layers.\1.norm2.\2"),
    Rule(
        _LAYER + r"cross_attn\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)",
        r"predictor.layers.\1.cross_attn.\2",
    ),
    Rule(_LAYER + r"cross_attn_layer_norm\." + _WB, r"predictor.layers.\1.norm1.\2"),
    Rule(_LAYER + r"fc1\." + _WB, r"predictor.layers.\1.linear1.\2"),
    Rule(_LAYER + r"fc2\." + _WB, r"predictor.layers.\1.linear2.\2"),
    Rule(_LAYER + r"final_layer_norm\." + _WB, r"predictor.layers.\1.norm3.\2"),
    Rule(_TM + r"decoder\.layernorm\." + _WB, r"predictor.decoder_norm.\1"),
    Rule(_TM + r"decoder\.mask_predictor\.mask_embedder\.(\d)\.0\." + _WB, r"predictor.mask_embed.layers.\1.\2"),
    Rule(r"class_predictor\." + _WB, r"predictor.class_embed.\1"),
]
IGNORES = [
    Ignore(r"criterion\.empty_weight", "loss buffer (no-object class weight), not a network weight"),
    Ignore(_SWIN + r"layernorm\." + _WB, "Swin's classification norm, unused by the backbone"),
    Ignore(_BLOCK + r"attention\.self\.relative_position_index", "derived buffer, rebuilt from the window size"),
]


def _settings(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key, value) for key, value in defaults.items()}


def _require(condition: bool, source: str, what: str) -> None:
    if not condition:
        raise AnomaskError(f"{source}: unsupported Mask2Former configuration: {what}")


def _backbone(config: dict[str, Any], source: str) -> tuple[str, int]:
    """(our backbone name, Swin window size) from ``backbone_config``."""
    if config.get("use_timm_backbone") or (config.get("backbone") and not config.get("backbone_config")):
        raise AnomaskError(f"{source}: timm/hub backbones are not supported; need backbone_config (resnet or swin)")
    backbone = config.get("backbone_config") or _DEFAULT_BACKBONE
    kind = backbone.get("model_type")
    out_features = backbone.get("out_features", _OUT_FEATURES)
    _require(
        list(out_features) == _OUT_FEATURES, source, f"backbone out_features {out_features} (need {_OUT_FEATURES})"
    )
    if kind == "resnet":
        s = _settings(backbone, _RESNET_DEFAULTS)
        _require(
            not s["downsample_in_bottleneck"], source, "ResNet with stride in the 1x1 conv (downsample_in_bottleneck)"
        )
        _require(not s["downsample_in_first_stage"] and s["embedding_size"] == 64, source, "non-standard ResNet stem")
        key = (s["layer_type"], tuple(s["depths"]), tuple(s["hidden_sizes"]))
        _require(key in _RESNETS, source, f"ResNet {key} (supported: ResNet-18, ResNet-50)")
        return _RESNETS[key], 7
    if kind == "swin":
        s = _settings(backbone, _SWIN_DEFAULTS)
        _require(s["patch_size"] == 4 and s["mlp_ratio"] == 4.0 and s["qkv_bias"], source, "non-standard Swin")
        _require(not s["use_absolute_embeddings"], source, "Swin with absolute position embeddings")
        key = (s["embed_dim"], tuple(s["depths"]), tuple(s["num_heads"]))
        _require(key in _SWINS, source, f"Swin {key} (supported: Swin-T/S/B)")
        return _SWINS[key], int(s["window_size"])
    raise AnomaskError(f"{source}: unsupported backbone model_type {kind!r} (need resnet or swin)")


def architecture(config: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """``ModelConfig`` fields and class names (``id2label`` order) from ``config.json``."""
    _require(
        config.get("model_type", "mask2former") == "mask2former", source, f"model_type {config.get('model_type')!r}"
    )
    s = _settings(config, _M2F_DEFAULTS)
    _require(
        s["feature_size"] == s["hidden_dim"],
        source,
        f"feature_size {s['feature_size']} != hidden_dim {s['hidden_dim']}",
    )
    _require(list(s["feature_strides"]) == [4, 8, 16, 32] and s["common_stride"] == 4, source, "feature strides")
    _require(not s["pre_norm"], source, "pre_norm decoder layers")
    _require(not s["enforce_input_projection"], source, "enforce_input_projection")
    _require(s["activation_function"] == "relu", source, f"activation {s['activation_function']!r}")
    _require(s["decoder_layers"] >= 1, source, "decoder_layers < 1")
    backbone, window = _backbone(config, source)
    id2label = config.get("id2label")
    if not id2label:
        raise AnomaskError(f"{source}: config.json has no id2label (class names)")
    names = [id2label[k] for k in sorted(id2label, key=int)]
    fields = dict(
        backbone=backbone,
        window_size=window,
        num_queries=s["num_queries"],
        hidden_dim=s["hidden_dim"],
        mask_dim=s["mask_feature_size"],
        num_heads=s["num_attention_heads"],
        dim_feedforward=s["dim_feedforward"],
        dec_layers=s["decoder_layers"] - 1,
        enc_layers=s["encoder_layers"],
        enc_dim_feedforward=s["encoder_feedforward_dim"],
        enc_num_points=4,
    )
    return fields, names


def read_folder(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """(config.json, raw state dict, description of the source) of a save_pretrained folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnomaskError(f"{folder}: not a folder (a Hugging Face model saved with save_pretrained)")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise AnomaskError(f"{folder}: no config.json (not a save_pretrained folder)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise AnomaskError(f"{config_path}: not valid JSON ({error})") from error
    index = folder / "model.safetensors.index.json"
    if (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    elif index.is_file():
        files = [folder / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    elif (folder / "pytorch_model.bin").is_file():
        files = [folder / "pytorch_model.bin"]
    else:
        raise AnomaskError(f"{folder}: no model.safetensors or pytorch_model.bin")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(tensor_state(read_weight_file(path), str(path)))
    return config, state, str(folder)


def convert_state(state: dict[str, torch.Tensor], source: str) -> Mapped:
    return rename(state, RULES, IGNORES, source)
