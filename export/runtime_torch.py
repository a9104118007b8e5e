"""PyTorch backend: the same ``DeployGraph`` as the exported file, run eagerly (or through
``torch.compile``) from a checkpoint, on the CPU or a CUDA device."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from anomask import __version__
from anomask.errors import AnomaskError
from anomask.export.export_info import ExportInfo, ExportSettings
from anomask.export.graph import DeployGraph, build_heads, threshold_tensor
from anomask.export.onnx_export import deployed_metadata
from anomask.export.runtime import Runtime, StageTimer
from anomask.models.metadata import ModelMetadata

DEFAULT_INPUT_SIZE = (512, 1024)
"""Camera / network size a checkpoint runs at when none is given (Cityscapes at half size)."""


def checkpoint_settings(
    metadata: ModelMetadata,
    input_size: tuple[int, int] | None = None,
    network_size: tuple[int, int] | None = None,
    output_size: tuple[int, int] | None = None,
    score: str | None = None,
    refine: bool = False,
    input_format: str = "RGB",
    max_batch: int = 1,
    anomaly_dtype: str = "float32",
) -> ExportSettings:
    """Export settings for running a checkpoint directly: sizes default to each other
    (input -> network -> output), the score to the checkpoint's; batches of 1 to
    ``max_batch`` (a dynamic batch when ``max_batch`` > 1, ``ExportSettings`` has no dynamic
    batch of one)."""
    input_size = tuple(input_size or DEFAULT_INPUT_SIZE)
    network_size = tuple(network_size or input_size)
    return ExportSettings(
        input_size=input_size,
        network_size=network_size,
        output_size=tuple(output_size or network_size),
        score=score or metadata.score,
        refine=refine,
        input_format=input_format,
        batch=max_batch,
        dynamic_batch=max_batch > 1,
        anomaly_dtype=anomaly_dtype,
    )


class TorchRuntime(Runtime):
    backend = "pytorch"

    def __init__(
        self,
        network: nn.Module,
        metadata: ModelMetadata,
        settings: ExportSettings,
        source: str = "model",
        device: str = "cpu",
        compile: bool = False,
        half: bool = False,
        heads: nn.Module | None = None,
    ) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise AnomaskError(f"{source}: device {device} asked for, but CUDA is not available")
        heads = build_heads(metadata, settings) if heads is None else heads
        self.graph = DeployGraph(network, heads, metadata, settings, network_half=half).to(self.device).eval()
        self._forward = torch.compile(self.graph) if compile else None
        height, width = settings.input_size
        with torch.inference_mode():
            probe = self.graph(
                torch.zeros((1, height, width, 3), dtype=torch.uint8, device=self.device),
                threshold_tensor(0.5).to(self.device),
            )
        info = ExportInfo(
            metadata=deployed_metadata(metadata, settings),
            settings=settings,
            outputs=tuple(probe),
            anomask_version=__version__,
        )
        super().__init__(info, source)
        self._allocate_outputs(
            {name: (settings.batch, *value.shape[1:]) for name, value in probe.items()},
            {name: value.cpu().numpy().dtype for name, value in probe.items()},
        )

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "cpu", compile: bool = False, half: bool = False, **settings
    ) -> TorchRuntime:
        from anomask.models.checkpoint import load_checkpoint

        network, metadata = load_checkpoint(path)
        return cls(
            network,
            metadata,
            checkpoint_settings(metadata, **settings),
            source=str(path),
            device=device,
            compile=compile,
            half=half,
        )

    def _release(self) -> None:
        self.graph = None
        self._forward = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _execute(self, frames: np.ndarray, threshold: float) -> None:
        batch = frames.shape[0]
        timer = StageTimer(self._sync)
        with torch.inference_mode():
            with timer("upload"):
                x = torch.from_numpy(frames).to(self.device, non_blocking=True)
                thr = threshold_tensor(threshold).to(self.device)
            if self._forward is not None:
                with timer("compute"):
                    out = self._forward(x, thr)
            else:
                with timer("network"):
                    network_out = self.graph.run_network(x)
                with timer("heads"):
                    out = self.graph.run_heads(network_out, thr)
            with timer("download"):
                for name in self.output_names:
                    self._outputs[name][:batch] = out[name].cpu().numpy()
        self.last_timings = timer.times
