"""Parity with a peer implementation: transformers' Mask2FormerForUniversalSegmentation
with random weights (built from a config, nothing downloaded), imported with
``anomask convert --from hf``; every decoder layer's predictions must agree.

Both configs mirror HF's real structure: full ResNet-50 / Swin-T backbones, the deformable
pixel decoder and the masked-attention decoder; only sizes are cut (64 channels, 2 encoder
layers, 10 queries, HF ``decoder_layers=5`` = our 4 layers, since HF counts the query-only
prediction as a layer)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from anomask.cli import main  # noqa: E402
from anomask.models import load_checkpoint  # noqa: E402

OUT_FEATURES = ["stage1", "stage2", "stage3", "stage4"]
CLASSES = ["road", "car", "cone"]


def _hf_model(backbone_config):
    dim = 64
    config = transformers.Mask2FormerConfig(
        backbone_config=backbone_config,
        feature_size=dim,
        mask_feature_size=dim,
        hidden_dim=dim,
        dim_feedforward=128,
        encoder_feedforward_dim=128,
        encoder_layers=2,
        decoder_layers=5,
        num_queries=10,
        id2label=dict(enumerate(CLASSES)),
        label2id={name: i for i, name in enumerate(CLASSES)},
    )
    return transformers.Mask2FormerForUniversalSegmentation(config).eval()


@pytest.mark.parametrize(
    "backbone_config, expected",
    [
        (lambda: transformers.ResNetConfig(out_features=OUT_FEATURES), "resnet50"),
        (lambda: transformers.SwinConfig(out_features=OUT_FEATURES, depths=[2, 2, 6, 2], drop_path_rate=0.0), "swin_t"),
    ],
    ids=["resnet50", "swin_t"],
)
def test_every_decoder_layer_matches_transformers(tmp_path, backbone_config, expected, capsys):
    torch.manual_seed(0)
    reference = _hf_model(backbone_config())
    reference.save_pretrained(tmp_path / "hf")
    out = tmp_path / "model.safetensors"
    assert (
        main(["convert", "--from", "hf", str(tmp_path / "hf"), "--out", str(out), "--thing-classes", "car,cone"]) == 0
    )
    assert "wrote" in capsys.readouterr().out

    model, metadata = load_checkpoint(out)
    assert metadata.architecture.backbone == expected and metadata.architecture.dec_layers == 4
    assert metadata.class_names == CLASSES and metadata.thing_ids == [1, 2]

    images = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        theirs = reference(pixel_values=images, output_auxiliary_logits=True)
        ours = model(images, aux=True)
    their_layers = [(a["class_queries_logits"], a["masks_queries_logits"]) for a in theirs.auxiliary_logits]
    their_layers.append((theirs.class_queries_logits, theirs.masks_queries_logits))
    our_layers = [(a["pred_logits"], a["pred_masks"]) for a in ours["aux_outputs"]]
    our_layers.append((ours["pred_logits"], ours["pred_masks"]))
    assert len(our_layers) == len(their_layers) == 5
    for (their_logits, their_masks), (our_logits, our_masks) in zip(their_layers, our_layers):
        assert our_masks.shape == their_masks.shape == (1, 10, 32, 32)
        assert (our_logits - their_logits).abs().max() <= 1e-4
        assert (our_masks - their_masks).abs().max() <= 1e-4
