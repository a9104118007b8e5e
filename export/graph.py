"""The deployed graph: uint8 camera frames in, labelled per-pixel outputs out.

``frames uint8 [B, H, W, 3] -> float NCHW (RGB) -> resize to the network resolution ->
normalise (metadata mean/std) -> network -> fused heads (their own upsampling to the network
resolution) -> [OutputResize to the output resolution] -> outputs``. The same module is
exported to ONNX, compiled by Torch-TensorRT and run eagerly by the PyTorch runtime, so every
backend computes the same function.

With ``ExportSettings.flip`` (``anomask export --flip``) the network and heads also run on
the left-right flipped frames (one batch of twice the frames: twice the cost) and the
anomaly score is the mean of the two (``flip_averaged``), Mask2Anomaly's official inference.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from anomask.errors import AnomaskError
from anomask.export.export_info import REQUIRED_OUTPUTS, ExportSettings
from anomask.models.metadata import ModelMetadata


class FramePreprocess(nn.Module):
    """uint8 NHWC frames (RGB or BGR) -> normalised float NCHW RGB at the network size."""

    def __init__(self, metadata: ModelMetadata, settings: ExportSettings) -> None:
        super().__init__()
        self.network_size = tuple(settings.network_size)
        self.resize = tuple(settings.input_size) != self.network_size
        self.bgr = settings.input_format == "BGR"
        # Flipping BGR->RGB is folded into the channel order of mean/std and a channel
        # gather; normalisation is one multiply-add: (x - mean) / std = x * (1/std) - mean/std.
        mean = torch.tensor(metadata.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(metadata.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / std, persistent=False)
        self.register_buffer("shift", -mean / std, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # Cast first: TensorRT takes a uint8 input only straight into a Cast (export/op_support.py).
        x = frames.to(torch.float32).permute(0, 3, 1, 2)
        if self.bgr:
            x = x[:, [2, 1, 0]]
        if self.resize:
            x = F.interpolate(x, size=self.network_size, mode="bilinear", align_corners=False)
        return x * self.scale + self.shift


HEAD_INPUTS = {"mask2former": ("pred_logits", "pred_masks"), "per_pixel": ("sem_logits", "outlier_logits")}
"""Which network outputs the heads of each meta-architecture read (model output contract)."""


def build_heads(metadata: ModelMetadata, settings: ExportSettings) -> nn.Module:
    """``FusedHeads`` (mask classification) or ``PerPixelHeads`` (the two-head model of
    noisy negatives (Bevandić et al., 2022), whose only score is OP x MSM) for the exported
    score and refinement, at the network size (``OutputResize`` brings the maps to the
    output size)."""
    from anomask.models.heads import FusedHeads, PerPixelHeads

    if metadata.architecture.meta_arch == "per_pixel":
        return PerPixelHeads(metadata, output_size=settings.network_size)
    return FusedHeads(metadata, score=settings.score, refine=settings.refine, output_size=settings.network_size)


class OutputResize(nn.Module):
    """Every per-pixel output from the network size to the output size, inside the graph
    (``anomask export --output-size``, a fixed camera size), by the node's CPU rule
    (``anomask.export.frames.resize_map``): ``anomaly`` bilinear (``align_corners=False``),
    the label, index and flag maps nearest; ``mask_area`` scaled by the area ratio, as the
    heads do. ``semantic``, ``open_set`` and ``anomaly`` are then what the node would publish
    from the network-size graph (labels identical; the score within OpenCV's fixed-point
    bilinear weights, ~1e-4 of its range); the panoptic CPU step runs at the output size."""

    def __init__(self, network_size: tuple[int, int], output_size: tuple[int, int]) -> None:
        super().__init__()
        self.output_size = tuple(output_size)
        self.area_ratio = (output_size[0] * output_size[1]) / (network_size[0] * network_size[1])

    def forward(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        resized = {}
        for name, value in outputs.items():
            if name == "anomaly":
                value = F.interpolate(value[:, None], size=self.output_size, mode="bilinear", align_corners=False)[:, 0]
            elif name == "mask_area":
                value = torch.round(value.to(torch.float32) * self.area_ratio).to(value.dtype)
            elif value.dim() == 3:
                # Cast before anything else: TensorRT takes a uint8 tensor only into a Cast.
                x = F.interpolate(value.to(torch.float32)[:, None], size=self.output_size, mode="nearest")
                value = x[:, 0].to(value.dtype)
            resized[name] = value
        return resized


class DeployGraph(nn.Module):
    """Preprocessing + network + heads as one module; returns outputs by name.

    ``heads`` is ``build_heads(...)`` (or anything with the heads' interface:
    ``heads(*network outputs named by HEAD_INPUTS, threshold) -> Mapping[str, Tensor]`` holding
    at least ``semantic``, ``anomaly`` and ``open_set`` at the output resolution).
    """

    def __init__(
        self,
        network: nn.Module,
        heads: nn.Module,
        metadata: ModelMetadata,
        settings: ExportSettings,
        network_half: bool = False,
    ) -> None:
        super().__init__()
        self.preprocess = FramePreprocess(metadata, settings)
        self.network = copy.deepcopy(network).half() if network_half else network
        self.network_half = network_half
        """Run the network in float16 (explicit typing: GPU PyTorch and Torch-TensorRT FP16);
        preprocessing and heads stay float32. A float16 copy: the caller's network stays as it
        was (``anomask bench runtime`` opens pytorch, then pytorch-fp16, on one network)."""
        self.heads = heads
        self.head_inputs = HEAD_INPUTS[metadata.architecture.meta_arch]
        self.anomaly_dtype = torch.float16 if settings.anomaly_dtype == "float16" else torch.float32
        self.flip = settings.flip
        resize = tuple(settings.output_size) != tuple(settings.network_size)
        self.resize = OutputResize(settings.network_size, settings.output_size) if resize else None

    def forward(self, frames: torch.Tensor, threshold: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.run_heads(self.run_network(frames), threshold)

    def run_network(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        images = self.preprocess(frames)
        if self.flip:  # one batch of 2B: the frames, then their left-right flips (after the cast: TensorRT)
            images = torch.cat([images, images.flip(3)])
        if not self.network_half:
            return self.network(images)
        out = self.network(images.half())
        return {name: out[name].float() for name in self.head_inputs}

    def run_heads(self, network_out: dict[str, torch.Tensor], threshold: torch.Tensor) -> dict[str, torch.Tensor]:
        heads_out = self.heads(*(network_out[name] for name in self.head_inputs), threshold)
        if self.flip:
            batch = heads_out["anomaly"].shape[0] // 2
            halves = {name: _halves(value, batch) for name, value in heads_out.items()}
            out = {name: half[0] for name, half in halves.items()}
            heads_out = flip_averaged(out, {name: half[1] for name, half in halves.items()}, threshold)
        if self.resize is not None:
            heads_out = self.resize(heads_out)
        return order_outputs(heads_out, self.anomaly_dtype)


def _halves(value: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``value[:batch]`` and ``value[batch:]``; a uint8 map is sliced as int32 (TensorRT takes
    uint8 only into and out of a Cast, ``op_support``)."""
    wide = value.to(torch.int32) if value.dtype == torch.uint8 else value
    return wide[:batch].to(value.dtype), wide[batch:].to(value.dtype)


def flip_averaged(
    out: dict[str, torch.Tensor], flipped: dict[str, torch.Tensor], threshold: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``out`` with its anomaly score averaged with the flipped frame's, flipped back
    (Mask2Anomaly's official inference, ``heads.official.flip_average``), and ``open_set``
    redone at ``threshold`` from the averaged score, as the official code thresholds it (a
    pixel refined in one view only can be unknown). Every other output is the unflipped
    frame's."""
    from anomask.models.heads import open_set_semantic
    from anomask.models.heads.official import flip_average

    anomaly = flip_average(out["anomaly"].float(), flipped["anomaly"].float())
    return {
        **out,
        "anomaly": anomaly.to(out["anomaly"].dtype),
        "open_set": open_set_semantic(out["semantic"], anomaly, threshold.to(torch.float32)),
    }


def order_outputs(heads_out: Mapping[str, torch.Tensor], anomaly_dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The graph's outputs in their fixed order: ``REQUIRED_OUTPUTS`` first, then the panoptic
    intermediates in the heads' own order."""
    missing = [name for name in REQUIRED_OUTPUTS if name not in heads_out]
    if missing:
        raise AnomaskError(
            f"the heads do not return {', '.join(missing)}; exported graphs need {', '.join(REQUIRED_OUTPUTS)}"
        )
    ordered = {name: heads_out[name] for name in REQUIRED_OUTPUTS}
    ordered["anomaly"] = ordered["anomaly"].to(anomaly_dtype)
    ordered.update((name, value) for name, value in heads_out.items() if name not in ordered)
    return ordered


def threshold_tensor(value: float) -> torch.Tensor:
    """The graph's ``threshold`` input: a 0-d float32 tensor (``FusedHeads`` takes it so)."""
    return torch.tensor(value, dtype=torch.float32)
