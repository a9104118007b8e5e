"""Fixtures of the export tests. The dynamo exporter is slow (seconds per graph), so each
graph is exported ONCE per session and shared:

- ``exported``: the real small Mask2Former checkpoint through ``anomask export --check``
  (batch 2, BGR, resize inside the graph, EAM + refinement): the end-to-end graph.
- ``standin_dynamic``: a one-convolution stand-in network (model output contract) + the
  real ``FusedHeads``; dynamic batch 1..3, BGR, float16 anomaly: a fast graph for runtime
  behaviour tests (its static twin ``standin_onnx`` is in tests/conftest.py: the
  benchmarks' tests use it too).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import nn

from anomask.cli import main
from anomask.export.export_info import ExportSettings
from anomask.models.metadata import ModelMetadata

from ..conftest import export_standin, save_tiny_model


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
    network, metadata, checkpoint = save_tiny_model(folder)
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
    return export_standin(tmp_path_factory.mktemp("standin_dynamic"), settings)
