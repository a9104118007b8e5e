"""Suite-wide settings and the small models several test folders share.

Every pytest run, and each of its xdist workers, gets its own ROS domain, on loopback only:
several pytest runs (and developers) may share a machine; a private ``ROS_DOMAIN_ID`` per test
process keeps their nodes from hearing each other. Subprocesses inherit it.

The dynamo exporter is slow (seconds per graph, tens of seconds for a real network), so the
graphs that the export, ROS and benchmark tests all use are exported ONCE per session here:

- ``standin_onnx``: a one-convolution stand-in network (model output contract) + the real
  ``FusedHeads``; static batch 2, RGB: a fast graph for runtime behaviour tests.
- ``tiny_synthetic`` / ``tiny_args``: the synthetic default at 64x128 and the ``anomask
  train`` arguments of a tiny CPU run (training, docs tests).
- ``small_model``: a randomly initialised tiny Mask2Former (``tiny_metadata``: road, sky,
  car; 4 queries) saved as a checkpoint and exported with the export package's API: frames
  64x128 RGB, network 128x256, outputs 32x64, EAM, batch 1.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from anomask.export.export_info import ExportSettings
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata

if "ANOMASK_TEST_DOMAIN_BASE" not in os.environ:
    # Chosen once per pytest run; its xdist workers and every subprocess inherit it.
    os.environ["ANOMASK_TEST_DOMAIN_BASE"] = str(random.Random(os.getpid()).randrange(101))
# Domains 1..101 map to DDS ports that stay clear of Linux ephemeral ports; each xdist worker
# (gw0, gw1, ...) takes the next one, so parallel workers never hear each other.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
os.environ["ROS_DOMAIN_ID"] = str((int(os.environ["ANOMASK_TEST_DOMAIN_BASE"]) + _WORKER) % 101 + 1)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

# pytest's log capture listens at DEBUG, which makes torch.export build its structured trace
# payloads for every node (slow); the export tests do not need them.
logging.getLogger("torch.__trace").setLevel(logging.WARNING)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run only where CUDA is; elsewhere they are skipped with the reason."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


CLASSES = tuple(
    ClassInfo(name, name == "car", color)
    for name, color in (("road", (128, 64, 128)), ("sky", (70, 130, 180)), ("car", (0, 0, 142)))
)
TINY = dict(
    num_classes=3,
    num_queries=4,
    hidden_dim=32,
    mask_dim=32,
    num_heads=4,
    dim_feedforward=64,
    dec_layers=2,
    enc_layers=1,
    enc_dim_feedforward=64,
)
"""A Mask2Former small enough to export in seconds (3 classes, 4 queries, dim 32)."""


def tiny_metadata(**overrides) -> ModelMetadata:
    return ModelMetadata(classes=CLASSES, architecture=ModelConfig.small(**{**TINY, **overrides}))


class StandInNetwork(nn.Module):
    """Model output contract with one convolution: pred_logits [B,N,C], pred_masks [B,N,H/4,W/4]."""

    def __init__(self, num_outputs: int = 4, queries: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.mask_embed = nn.Conv2d(8, queries, 1)
        self.cls = nn.Linear(8, queries * num_outputs)
        self.queries, self.num_outputs = queries, num_outputs

    def forward(self, images):
        feats = torch.relu(self.stem(images))
        logits = self.cls(feats.mean(dim=(2, 3))).view(-1, self.queries, self.num_outputs)
        return {"pred_logits": logits, "pred_masks": self.mask_embed(feats)}


def save_tiny_model(folder: Path) -> tuple[nn.Module, ModelMetadata, Path]:
    """A randomly initialised (seed 0) tiny Mask2Former of ``tiny_metadata``, saved as
    ``folder/small.safetensors``: network (eval mode), metadata, checkpoint path."""
    from anomask.models import build_model, save_checkpoint

    torch.manual_seed(0)
    metadata = tiny_metadata()
    network = build_model(metadata.architecture).eval()
    return network, metadata, save_checkpoint(folder / "small.safetensors", network, metadata)


def export_standin(folder: Path, settings: ExportSettings) -> tuple[Path, nn.Module, ModelMetadata, ExportSettings]:
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx

    torch.manual_seed(1)
    network, metadata = StandInNetwork().eval(), tiny_metadata()
    path = folder / "standin.onnx"
    export_onnx(network, build_heads(metadata, settings), metadata, settings, path)
    return path, network, metadata, settings


@pytest.fixture(scope="session")
def standin_onnx(tmp_path_factory):
    settings = ExportSettings(input_size=(32, 48), network_size=(32, 48), output_size=(16, 24), batch=2)
    return export_standin(tmp_path_factory.mktemp("standin"), settings)


SMALL_INPUT = (64, 128)
"""Camera frames of the small model (H, W)."""
SMALL_NETWORK = (128, 256)
"""Its network resolution: large enough that inference runs at a few Hz (the load test)."""
SMALL_OUTPUT = (32, 64)
"""Its output resolution: neither the frame's nor the network's, so resizing is exercised."""


@dataclass(frozen=True)
class SmallModel:
    onnx: Path
    checkpoint: Path


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> SmallModel:
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("small_model")
    network, metadata, checkpoint = save_tiny_model(folder)
    settings = ExportSettings(
        input_size=SMALL_INPUT, network_size=SMALL_NETWORK, output_size=SMALL_OUTPUT, score="eam", batch=1
    )
    onnx = folder / "small.onnx"
    export_onnx(network, build_heads(metadata, settings), metadata, settings, onnx)
    return SmallModel(onnx, checkpoint)


TINY_SETTINGS = [
    # 64x128 frames, the small preset's backbone with one encoder/decoder layer of width 32, 6 queries.
    "data.crop=[64,128]",
    "data.scales=[1.0]",
    "solver.batch_size=2",
    "model.dec_layers=1",
    "model.enc_layers=1",
    "model.num_queries=6",
    "model.hidden_dim=32",
    "model.mask_dim=32",
    "model.num_heads=2",
    "model.dim_feedforward=64",
    "model.enc_dim_feedforward=64",
    "loss.num_points=128",
    "validation.max_images=2",
]


def _tiny_args(dataset, out, *extra, recipe="closed-set", iterations=4):
    """``anomask train`` arguments of a tiny CPU run on ``dataset`` (a few seconds)."""
    args = [
        "train",
        "--recipe",
        recipe,
        "--preset",
        "small",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--no-progress",
        "--iterations",
        str(iterations),
    ]
    for setting in TINY_SETTINGS:
        args += ["--set", setting]
    return args + list(extra)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """The synthetic default at 64x128: 6 train, 2 val, 2 anomaly test frames (one seen, one
    unseen), 2 anomaly validation frames (seen)."""
    from anomask.training.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, SynthConfig(seed=0, train=6, val=2, test=2, anomaly_val=2, height=64, width=128))
    return root


@pytest.fixture(scope="session")
def tiny_args():
    return _tiny_args


@pytest.fixture(scope="session")
def tiny_settings():
    """The ``--set`` values of a tiny training run (``tiny_args`` passes them)."""
    return list(TINY_SETTINGS)
