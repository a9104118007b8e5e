import pytest
import torch
import torchvision
from torch import nn

from anomask.errors import AnomaskError
from anomask.models import build_model
from anomask.models.backbones import build_backbone


def test_mask2former_output_contract(make_config):
    config = make_config()
    model = build_model(config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
    assert out["pred_logits"].shape == (2, 4, config.num_outputs)
    assert out["pred_masks"].shape == (2, 4, 16, 24)
    assert "aux_outputs" not in out
    model.train()
    out = model(torch.randn(2, 3, 64, 96))
    assert len(out["aux_outputs"]) == config.dec_layers
    assert all(a["pred_masks"].shape == (2, 4, 16, 24) for a in out["aux_outputs"])
    out["pred_logits"].sum().backward()


def test_per_pixel_two_head_outputs(make_config):
    model = build_model(make_config(meta_arch="per_pixel")).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out["sem_logits"].shape == (1, 3, 16, 16)
    assert out["outlier_logits"].shape == (1, 1, 16, 16)


def test_resnet50_has_torchvision_key_layout():
    reference = torchvision.models.resnet50().state_dict()
    ours = build_backbone("resnet50").state_dict()
    assert set(ours) == set(reference) - {"fc.weight", "fc.bias"}
    assert all(ours[k].shape == reference[k].shape for k in ours)


@pytest.mark.parametrize(
    "name, channels",
    [
        ("resnet18", (64, 128, 256, 512)),
        ("efficientnet_lite0", (24, 40, 112, 320)),
        ("swin_t", (96, 192, 384, 768)),
    ],
)
def test_backbone_strides_and_channels(name, channels):
    backbone = build_backbone(name).eval()
    assert backbone.channels == channels
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_freeze_backbone_keeps_batchnorm_in_eval_and_stops_gradients(make_config):
    model = build_model(make_config(freeze_backbone=True)).train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    norm = next(m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    assert not norm.training and model.pixel_decoder.training
    running = norm.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))["pred_logits"].sum().backward()
    assert torch.equal(running, norm.running_mean)
    assert model.predictor.class_embed.weight.grad is not None


def test_bad_configs_raise_clear_errors(make_config):
    with pytest.raises(AnomaskError, match="unknown backbone 'vgg'"):
        build_model(make_config(backbone="vgg"))
    with pytest.raises(AnomaskError, match="no packaged weights for resnet18"):
        build_model(make_config(backbone="resnet18", pretrained_backbone=True))
    with pytest.raises(AnomaskError, match="multiples of 32"):
        build_model(make_config(hidden_dim=48))
    with pytest.raises(AnomaskError, match="negative_class applies to mask2former"):
        build_model(make_config(meta_arch="per_pixel", negative_class=True))
