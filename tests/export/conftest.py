"""Fixtures of the export tests. The dynamo exporter is slow (seconds per graph), so each
graph is exported ONCE per session and shared:

- ``exported``: the real small Mask2Former checkpoint through ``anomask export --check``
  (batch 2, BGR, resize inside the graph, EAM + refinement): the end-to-end graph.
- ``standin_onnx`` / ``standin_dynamic``: a one-convolution stand-in network (model output
  contract) + the real ``FusedHeads``; static batch 2, RGB / dynamic batch 1..3, BGR,
  float16 anomaly: fast graphs for runtime behaviour tests.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from anomask.cli import main
from anomask.export.export_info import ExportSettings
from anomask.models.checkpoint import save_checkpoint
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata
from anomask.models.network import build_model

# pytest's log capture listens at DEBUG, which makes torch.export build its structured trace
# payloads for every node (slow); the export tests do not need them.
logging.getLogger("torch.__trace").setLevel(logging.WARNING)

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


@dataclass(frozen=True)
class Exported:
    checkpoint: Path
    onnx: Path
    network: nn.Module
    metadata: ModelMetadata
    settings: ExportSettings
    check_output: str


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Exported:
    folder = tmp_path_factory.mktemp("exported")
    torch.manual_seed(0)
    metadata = tiny_metadata()
    network = build_model(metadata.architecture).eval()
    checkpoint = save_checkpoint(folder / "small.safetensors", network, metadata)
    onnx_path = folder / "small.onnx"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(
            [
                "export",
                str(checkpoint),
                "--out",
                str(onnx_path),
                "--height",
                "48",
                "--width",
                "80",
                "--network-size",
                "64",
                "96",
                "--output-size",
                "32",
                "48",
                "--score",
                "eam",
                "--refine",
                "--bgr",
                "--batch",
                "2",
                "--check",
                "--check-frames",
                "3",
            ]
        )
    assert status == 0, out.getvalue()
    settings = ExportSettings(
        input_size=(48, 80),
        network_size=(64, 96),
        output_size=(32, 48),
        score="eam",
        refine=True,
        input_format="BGR",
        batch=2,
    )
    return Exported(checkpoint, onnx_path, network, metadata, settings, out.getvalue())


def _export_standin(folder: Path, settings: ExportSettings) -> tuple[Path, nn.Module, ModelMetadata, ExportSettings]:
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
    return _export_standin(tmp_path_factory.mktemp("standin"), settings)


@pytest.fixture(scope="session")
def standin_dynamic(tmp_path_factory):
    settings = ExportSettings(
        input_size=(32, 48),
        network_size=(32, 48),
        output_size=(16, 24),
        batch=3,
        dynamic_batch=True,
        input_format="BGR",
        anomaly_dtype="float16",
    )
    return _export_standin(tmp_path_factory.mktemp("standin_dynamic"), settings)
