"""Fixtures of the ``anomask eval`` tests: the synthetic default at 64x128 (2 val, 4 anomaly
test images: seen, unseen, seen, unseen; 2 anomaly validation images) and a randomly
initialised small checkpoint for it."""

import pytest
import torch

from anomask.models import ModelConfig, ModelMetadata, build_model, save_checkpoint
from anomask.training.data.synthetic import SYNTH_CLASSES, SynthConfig, generate

TINY = dict(
    num_classes=len(SYNTH_CLASSES.classes),
    dec_layers=1,
    enc_layers=1,
    num_queries=6,
    hidden_dim=32,
    mask_dim=32,
    num_heads=2,
    dim_feedforward=64,
    enc_dim_feedforward=64,
    # The evaluation tests construct their cases (segments kept, class 0 a thing) from a
    # random ResNet-18's outputs; the preset's pretrained backbone is tested in tests/models.
    backbone="resnet18",
    pretrained_backbone=False,
)
CALIBRATED_EAM = -0.5
"""The checkpoint's stored ``eam@tpr95`` (any value: the tests check it is the one used)."""


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, SynthConfig(seed=0, train=0, val=2, test=4, anomaly_val=2, height=64, width=128))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Random weights; the class head leans to road and car so that masks are kept and the
    panoptic tables hold segments (counts), not only empty maps."""
    config = ModelConfig.small(**TINY)
    torch.manual_seed(0)
    network = build_model(config)
    with torch.no_grad():
        head = network.predictor.class_embed
        head.weight.mul_(10.0)
        head.bias.zero_()
        head.bias[0], head.bias[9] = 6.0, 5.5
    metadata = ModelMetadata(
        classes=SYNTH_CLASSES.classes, architecture=config, thresholds={"eam@tpr95": CALIBRATED_EAM}
    )
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors", network, metadata)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a busy 2-core machine two threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
