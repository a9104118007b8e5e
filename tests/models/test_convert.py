"""``anomask convert`` on state dicts built here in the detectron2 and torchvision key
layouts (the real checkpoints cannot be downloaded), and its error messages."""

import pickle
import re

import numpy as np
import pytest
import torch
import torchvision

from anomask.cli import main
from anomask.errors import AnomaskError
from anomask.models import load_checkpoint
from anomask.models.backbones import build_backbone
from anomask.models.convert import ClassOptions, import_detectron2, import_torchvision
from anomask.models.convert.detectron2 import architecture, backbone_spec, convert_state
from anomask.models.convert.weight_files import read_weight_file

# Our key -> facebookresearch/Mask2Former's (detectron2 ResNet, MSDeformAttnPixelDecoder,
# MultiScaleMaskedTransformerDecoder; Mask2Anomaly's GMA cross-attention names).
_TO_D2 = [
    (r"backbone\.conv1\.weight", "backbone.stem.conv1.weight"),
    (r"backbone\.bn1\.(\w+)", r"backbone.stem.conv1.norm.\1"),
    (
        r"backbone\.layer(\d)\.(\d+)\.conv(\d)\.weight",
        lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.weight",
    ),
    (
        r"backbone\.layer(\d)\.(\d+)\.bn(\d)\.(\w+)",
        lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.{m[4]}",
    ),
    (
        r"backbone\.layer(\d)\.(\d+)\.downsample\.0\.weight",
        lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.shortcut.weight",
    ),
    (
        r"backbone\.layer(\d)\.(\d+)\.downsample\.1\.(\w+)",
        lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.shortcut.norm.{m[3]}",
    ),
    (r"pixel_decoder\.level_embed", "sem_seg_head.pixel_decoder.transformer.level_embed"),
    (r"pixel_decoder\.encoder\.(.*)", r"sem_seg_head.pixel_decoder.transformer.encoder.\1"),
    (r"pixel_decoder\.lateral_conv\.0\.weight", "sem_seg_head.pixel_decoder.adapter_1.weight"),
    (r"pixel_decoder\.lateral_conv\.1\.(\w+)", r"sem_seg_head.pixel_decoder.adapter_1.norm.\1"),
    (r"pixel_decoder\.output_conv\.0\.weight", "sem_seg_head.pixel_decoder.layer_1.weight"),
    (r"pixel_decoder\.output_conv\.1\.(\w+)", r"sem_seg_head.pixel_decoder.layer_1.norm.\1"),
    (r"pixel_decoder\.(.*)", r"sem_seg_head.pixel_decoder.\1"),
    (
        r"predictor\.layers\.(\d+)\.cross_attn\.(.*)",
        r"sem_seg_head.predictor.transformer_cross_attention_layers.\1.multihead_attn_foreground.\2",
    ),
    (
        r"predictor\.layers\.(\d+)\.cross_attn_bg\.(.*)",
        r"sem_seg_head.predictor.transformer_cross_attention_layers.\1.multihead_attn_background.\2",
    ),
    (r"predictor\.layers\.(\d+)\.norm1\.(.*)", r"sem_seg_head.predictor.transformer_cross_attention_layers.\1.norm.\2"),
    (
        r"predictor\.layers\.(\d+)\.self_attn\.(.*)",
        r"sem_seg_head.predictor.transformer_self_attention_layers.\1.self_attn.\2",
    ),
    (r"predictor\.layers\.(\d+)\.norm2\.(.*)", r"sem_seg_head.predictor.transformer_self_attention_layers.\1.norm.\2"),
    (r"predictor\.layers\.(\d+)\.(linear\d)\.(.*)", r"sem_seg_head.predictor.transformer_ffn_layers.\1.\2.\3"),
    (r"predictor\.layers\.(\d+)\.norm3\.(.*)", r"sem_seg_head.predictor.transformer_ffn_layers.\1.norm.\2"),
    (r"predictor\.(.*)", r"sem_seg_head.predictor.\1"),
]


def _d2_key(key: str) -> str:
    for pattern, target in _TO_D2:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    raise AssertionError(key)


def _detectron2_state(model) -> dict[str, np.ndarray]:
    """A Mask2Anomaly-style checkpoint dict: detectron2 names, numpy arrays, no BatchNorm
    counters, plus the buffers the official files carry."""
    state = {
        _d2_key(k): v.numpy().copy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    state["pixel_mean"] = np.array([[[120.0]], [[110.0]], [[100.0]]], np.float32)
    state["pixel_std"] = np.array([[[60.0]], [[50.0]], [[40.0]]], np.float32)
    state["criterion.empty_weight"] = np.ones(model.config.num_outputs, np.float32)
    state["sem_seg_head.predictor.transformer_cross_attention_layers.0.fusion_layer.weight"] = np.zeros(
        (2, 4, 1, 1), np.float32
    )
    return state


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_detectron2_checkpoint_converts_to_the_same_network(tmp_path, gma_model, suffix, capsys):
    state = _detectron2_state(gma_model)
    src = tmp_path / f"model_final{suffix}"
    if suffix == ".pkl":
        src.write_bytes(pickle.dumps({"model": state, "__author__": "test", "matching_heuristics": True}))
    else:
        torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "iteration": 5}, src)
    out = tmp_path / "m.safetensors"
    assert (
        main(
            [
                "convert",
                "--from",
                "detectron2",
                str(src),
                "--out",
                str(out),
                "--num-heads",
                "4",
                "--classes",
                "road,sky,cone",
                "--thing-classes",
                "cone",
            ]
        )
        == 0
    )
    report = capsys.readouterr().out
    assert "fusion_layer, defined but unused" in report and "num_batches_tracked" in report
    model, metadata = load_checkpoint(out)
    assert metadata.architecture == gma_model.config
    assert metadata.mean == (120.0, 110.0, 100.0) and metadata.std == (60.0, 50.0, 40.0)
    assert metadata.class_names == ["road", "sky", "cone"] and metadata.thing_ids == [2]
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = gma_model(images), model(images)
    assert torch.equal(expected["pred_logits"], got["pred_logits"])
    assert torch.equal(expected["pred_masks"], got["pred_masks"])


def test_detectron2_errors_name_the_keys(tmp_path, gma_model):
    options = ClassOptions(classes="road,sky,cone")
    src = tmp_path / "bad.pkl"

    def convert(state):
        src.write_bytes(pickle.dumps({"model": state}))
        return import_detectron2(src, options, num_heads=4)

    state = _detectron2_state(gma_model)
    state["sem_seg_head.predictor.extra_head.weight"] = np.zeros(3, np.float32)
    with pytest.raises(AnomaskError, match=r"unknown keys .*sem_seg_head\.predictor\.extra_head\.weight"):
        convert(state)

    state = _detectron2_state(gma_model)
    del state["sem_seg_head.predictor.transformer_ffn_layers.1.norm.bias"]
    with pytest.raises(AnomaskError, match=r"missing keys: predictor\.layers\.1\.norm3\.bias"):
        convert(state)

    state = _detectron2_state(gma_model)
    key = "sem_seg_head.predictor.transformer_ffn_layers.2.linear1.weight"
    state[key] = np.zeros((96, 32), np.float32)
    with pytest.raises(
        AnomaskError,
        match=rf"shape mismatch: predictor\.layers\.2\.linear1\.weight \(from {re.escape(key)}\) is \(96, 32\)",
    ):
        convert(state)
    assert not list(tmp_path.glob("*.safetensors"))


def test_pickles_with_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"model": {"w": Evil()}}))
    with pytest.raises(
        AnomaskError, match=r"evil\.pkl: not a detectron2 weights pickle \(refusing to load builtins\.print"
    ):
        read_weight_file(src)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00 definitely not a torch file")
    with pytest.raises(AnomaskError, match=r"junk\.pth: not a weights-only PyTorch file"):
        read_weight_file(junk)
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(AnomaskError, match=r"model\.ckpt: unknown weight file type '\.ckpt'"):
        read_weight_file(tmp_path / "model.ckpt")


def test_detectron2_swin_layout_and_window_size_are_read_off_the_shapes():
    swin = build_backbone("swin_t")
    state = {f"backbone.{k}": v for k, v in swin.state_dict().items()}
    # detectron2's Swin stores the derived index buffer; 12x12 windows have a 23*23 table
    state["backbone.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    state["backbone.layers.0.blocks.0.attn.relative_position_bias_table"] = torch.zeros(23 * 23, 3)
    with pytest.raises(AnomaskError, match="missing key sem_seg_head.predictor.query_feat.weight"):
        architecture(state, 8, "swin.pkl")
    assert backbone_spec(state, "swin.pkl") == ("swin_t", 12)
    mapped = convert_state(state, "swin.pkl")
    assert "backbone.layers.0.blocks.0.attn.relative_position_index" in mapped.ignored
    assert set(mapped.state) == {f"backbone.{k}" for k in swin.state_dict()}


def test_torchvision_resnet_weights_load_as_they_are(tmp_path, capsys):
    reference = torchvision.models.resnet18()
    torch.nn.init.normal_(reference.layer3[1].conv2.weight)
    src = tmp_path / "resnet18.pth"
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, src)  # DataParallel-style
    out = tmp_path / "init.safetensors"
    assert (
        main(
            [
                "convert",
                "--from",
                "torchvision",
                str(src),
                "--out",
                str(out),
                "--preset",
                "small",
                "--classes",
                "cityscapes",
                "--global-masked-attention",
            ]
        )
        == 0
    )
    assert "ImageNet classifier" in capsys.readouterr().out
    model, metadata = load_checkpoint(out)
    assert metadata.num_classes == 19 and metadata.architecture.global_masked_attention
    ours = model.backbone.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.state_dict().items() if not k.startswith("fc."))

    bad = {k: v for k, v in reference.state_dict().items()}
    bad["layer2.0.conv1.weight"] = torch.zeros(128, 64, 1, 1)
    torch.save(bad, src)
    with pytest.raises(
        AnomaskError, match=r"backbone\.layer2\.0\.conv1\.weight \(from layer2\.0\.conv1\.weight\) is \(128, 64, 1, 1\)"
    ):
        import_torchvision(src, ClassOptions(), preset="small")


def test_cli_errors_exit_2_with_a_message(tmp_path, capsys):
    folder = tmp_path / "not_hf"
    folder.mkdir()
    assert main(["convert", "--from", "hf", str(folder), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "no config.json (not a save_pretrained folder)" in capsys.readouterr().err
    assert (
        main(["convert", "--from", "detectron2", str(tmp_path / "none.pkl"), "--out", str(tmp_path / "m.safetensors")])
        == 2
    )
    assert "none.pkl: weight file not found" in capsys.readouterr().err
    assert main(["convert", "--from", "hf", str(folder), "--out", str(tmp_path / "m.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.safetensors"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"pre_norm": True}, "pre_norm decoder layers"),
        ({"feature_size": 128}, "feature_size 128 != hidden_dim 256"),
        ({"backbone_config": {"model_type": "convnext"}}, "unsupported backbone model_type 'convnext'"),
        ({"backbone_config": {"model_type": "resnet", "downsample_in_bottleneck": True}}, "stride in the 1x1 conv"),
        ({"backbone_config": {"model_type": "swin", "depths": [2, 2, 2, 2]}}, r"Swin \(96, \(2, 2, 2, 2\)"),
        ({"id2label": {}}, "no id2label"),
    ],
)
def test_unsupported_hf_configs_are_named(change, message):
    from anomask.models.convert import hf

    config = {"model_type": "mask2former", "backbone_config": {"model_type": "resnet"}, "id2label": {"0": "road"}}
    config.update(change)
    with pytest.raises(AnomaskError, match=message):
        hf.architecture(config, "hf_folder")


def test_hf_defaults_give_mask2former_s_swin_and_dec_layers_minus_one():
    from anomask.models.convert import hf

    fields, names = hf.architecture({"id2label": {"1": "car", "0": "road"}}, "hf_folder")
    assert names == ["road", "car"]
    assert fields["backbone"] == "swin_s" and fields["dec_layers"] == 9 and fields["enc_layers"] == 6
