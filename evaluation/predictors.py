"""Run a model on one dataset image: the network once, every requested score from that one
output through the heads, every per-pixel map returned at the image's own size.

Two kinds of model:

* a **checkpoint** (``.safetensors``, ``CheckpointPredictor``): PyTorch; the network runs
  once per image and each requested score is one ``FusedHeads`` call on the same
  ``pred_logits`` / ``pred_masks`` (``PerPixelHeads`` and its single OP x MSM score for the
  per-pixel model of noisy negatives (Bevandić et al., 2022)). The first score's full heads
  output (semantic, panoptic intermediates) is kept; the other scores keep their anomaly map.
* an **exported model** (``.onnx``, ``.engine``, ``.plan``; ``ExportedPredictor``) through
  ``anomask.export.runtime.open_runtime``: the graph carries ONE fused score (the one chosen
  at export), so only that score is available.

Input resolution (``size``, checkpoints only):

* ``None`` (``native``): the image at its own size, padded bottom/right to a multiple of 32
  with the normalised mean, heads run at the padded size and are cropped back -- exactly what
  the training validation does (``anomask.training.validation``: it pads, it does not resize).
* ``(H, W)``: the image is resized bilinearly to ``H x W`` for the network (what the
  deployed graph does with a camera frame, ``anomask.export.graph.FramePreprocess``) and
  the heads upsample straight to the image's size.

An exported graph fixes its input size: an image of another size is resized to it with the
ROS node's rule (``anomask.export.frames.fit_frame``: area when shrinking, bilinear
otherwise), and outputs at another size are brought to the image's size (bilinear for the
anomaly map, nearest for class and mask-index maps, ``mask_area`` scaled by the area ratio
as ``FusedHeads`` does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anomask.errors import AnomaskError
from anomask.export.export_info import PANOPTIC_OUTPUTS
from anomask.export.frames import fit_frame, resize_map
from anomask.export.runtime import Runtime, open_runtime
from anomask.models.checkpoint import load_checkpoint
from anomask.models.heads import ANOMALY_SCORES, FusedHeads, PerPixelHeads, get_score
from anomask.models.metadata import ModelMetadata

REFINED = "+refined"
PER_PIXEL_SCORE = "op_msm"
"""The per-pixel model's only score (noisy negatives (Bevandić et al., 2022), eq. 2, ``PerPixelHeads``)."""
STRIDE = 32
CHECKPOINT_SUFFIXES = (".safetensors",)
EXPORTED_SUFFIXES = (".onnx", ".engine", ".plan")


def parse_score(label: str) -> tuple[str, bool]:
    """``"eam+refined"`` -> ``("eam", True)``; ``"msp"`` -> ``("msp", False)``."""
    return (label[: -len(REFINED)], True) if label.endswith(REFINED) else (label, False)


def score_label(score: str, refine: bool) -> str:
    return f"{score}{REFINED if refine else ''}"


def default_scores(metadata: ModelMetadata) -> tuple[str, ...]:
    """Every score the model supports (the metadata's own first), unrefined; ``aem`` is an
    alias of ``msp`` and left out."""
    if metadata.architecture.meta_arch == "per_pixel":
        return (PER_PIXEL_SCORE,)
    names = [
        n
        for n, s in ANOMALY_SCORES.items()
        if n != "aem" and (metadata.architecture.negative_class or not s.needs_negative)
    ]
    first = metadata.score if metadata.score in names else names[0]
    return (first, *[n for n in names if n != first])


def check_scores(labels: Sequence[str], metadata: ModelMetadata, source: str) -> tuple[str, ...]:
    """The requested score labels, validated against the model (unknown names, UNO scores on
    a K+1 model, anything but ``op_msm`` on a per-pixel model) and de-duplicated."""
    labels = tuple(dict.fromkeys(labels))
    if not labels:
        raise AnomaskError(f"{source}: no anomaly score requested")
    for label in labels:
        name, _ = parse_score(label)
        if metadata.architecture.meta_arch == "per_pixel":
            if label != PER_PIXEL_SCORE:
                raise AnomaskError(
                    f"{source}: a per-pixel (noisy negatives) model has one score, {PER_PIXEL_SCORE!r}; got {label!r}"
                )
        else:
            get_score(name, metadata)
    return labels


@dataclass
class ImageOutputs:
    heads: dict[str, np.ndarray]
    """The first score's heads output for the image (no batch axis): per-pixel maps
    ``[H, W]`` at the image size, per-mask vectors ``[N]``."""
    scores: dict[str, np.ndarray]
    """Anomaly map (float32 ``[H, W]``, higher = more anomalous) of every score label."""


class Predictor(ABC):
    """A model that turns one uint8 RGB image into ``ImageOutputs``."""

    backend: str = ""

    def __init__(self, source: str, metadata: ModelMetadata, scores: tuple[str, ...]) -> None:
        self.source = source
        self.metadata = metadata
        self.scores = scores
        self.notes: list[str] = []

    @property
    def primary(self) -> str:
        """The score whose heads output feeds open-set panoptic and GOSS."""
        return self.scores[0]

    @property
    def has_panoptic(self) -> bool:
        """Whether the heads output carries the panoptic intermediates (not for per-pixel models)."""
        return self.metadata.architecture.meta_arch != "per_pixel"

    @property
    @abstractmethod
    def resolution(self) -> str:
        """How images reach the network, in words (for the report)."""

    @abstractmethod
    def predict(self, image: np.ndarray) -> ImageOutputs: ...


def parse_size(text: str) -> tuple[int, int] | None:
    """``native`` -> None; ``HxW`` -> (H, W), both multiples of 32."""
    if text == "native":
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise AnomaskError(f"input size {text!r}: expected 'native' or HxW, e.g. 512x1024") from error
    if height < STRIDE or width < STRIDE or height % STRIDE or width % STRIDE:
        raise AnomaskError(f"input size {text!r}: height and width must be positive multiples of {STRIDE}")
    return height, width


class CheckpointPredictor(Predictor):
    backend = "pytorch"

    def __init__(
        self,
        path: str | Path,
        scores: Sequence[str] | None = None,
        size: tuple[int, int] | None = None,
        device: str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise AnomaskError(f"device {device} asked for, but CUDA is not available")
        network, metadata = load_checkpoint(path, map_location=self.device)
        super().__init__(str(path), metadata, check_scores(scores or default_scores(metadata), metadata, str(path)))
        self.network = network.eval()
        self.size = size
        self._heads: dict[tuple[str, tuple[int, int]], torch.nn.Module] = {}
        mean = torch.tensor(metadata.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(metadata.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._mean, self._std = mean, std

    @property
    def resolution(self) -> str:
        if self.size is None:
            return "native: each image at its own size, padded to a multiple of 32 (as the training validation)"
        return (
            f"resized to {self.size[0]}x{self.size[1]} for the network (as the deployed graph); outputs at the "
            f"image size"
        )

    def _heads_for(self, label: str, output_size: tuple[int, int]) -> torch.nn.Module:
        key = (label, output_size)
        if key not in self._heads:
            if self.metadata.architecture.meta_arch == "per_pixel":
                heads = PerPixelHeads(self.metadata, output_size=output_size)
            else:
                name, refine = parse_score(label)
                heads = FusedHeads(self.metadata, score=name, refine=refine, output_size=output_size)
            self._heads[key] = heads.to(self.device).eval()
        return self._heads[key]

    def _network_input(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """Normalised ``[1, 3, h, w]`` network input and the heads' output size."""
        height, width = image.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].to(torch.float32)
        if self.size is not None:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        x = (x - self._mean) / self._std
        if self.size is not None:
            return x, (height, width)
        x = F.pad(x, (0, -width % STRIDE, 0, -height % STRIDE))
        return x, (int(x.shape[-2]), int(x.shape[-1]))

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> ImageOutputs:
        height, width = image.shape[:2]
        x, output_size = self._network_input(image)
        network_out = self.network(x)
        inputs = (
            ("sem_logits", "outlier_logits")
            if self.metadata.architecture.meta_arch == "per_pixel"
            else ("pred_logits", "pred_masks")
        )
        threshold = torch.zeros((), dtype=torch.float32, device=self.device)  # open_set is redone per threshold later
        heads: dict[str, np.ndarray] = {}
        scores: dict[str, np.ndarray] = {}
        for label in self.scores:
            out = self._heads_for(label, output_size)(*(network_out[name] for name in inputs), threshold)
            if label == self.primary:
                heads = {name: _crop(value[0].cpu().numpy(), height, width) for name, value in out.items()}
                scores[label] = heads["anomaly"]
            else:
                scores[label] = _crop(out["anomaly"][0].cpu().numpy(), height, width)
        return ImageOutputs(heads=heads, scores=scores)


def _crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.ascontiguousarray(array[:height, :width]) if array.ndim == 2 else array


class ExportedPredictor(Predictor):
    """An exported model's ``Runtime`` (``open_runtime``: ONNX Runtime, TensorRT) and its one
    fused score."""

    def __init__(self, runtime: Runtime, scores: Sequence[str] | None = None) -> None:
        self.runtime = runtime
        self.backend = runtime.backend
        metadata = runtime.metadata
        settings = runtime.info.settings
        fused = (
            PER_PIXEL_SCORE
            if metadata.architecture.meta_arch == "per_pixel"
            else score_label(settings.score, settings.refine)
        )
        if scores and tuple(dict.fromkeys(scores)) != (fused,):
            raise AnomaskError(
                f"{runtime.source}: an exported model carries one fused score, {fused!r}; asked for "
                f"{', '.join(scores)}. "
                "Evaluate the checkpoint for other scores, or export one model per score"
            )
        super().__init__(runtime.source, metadata, (fused,))
        self.notes.append(
            f"exported model ({self.backend}): only its fused score {fused!r} is available; evaluate the checkpoint "
            "(.safetensors) for the other scores"
        )

    @property
    def has_panoptic(self) -> bool:
        return all(name in self.runtime.output_names for name in PANOPTIC_OUTPUTS)

    @property
    def resolution(self) -> str:
        (h, w), (nh, nw), (oh, ow) = (
            self.runtime.input_size,
            self.runtime.info.settings.network_size,
            self.runtime.output_size,
        )
        return (
            f"exported graph: images resized to its input {h}x{w} (network {nh}x{nw}, outputs {oh}x{ow}), "
            "outputs brought back to the image size"
        )

    def predict(self, image: np.ndarray) -> ImageOutputs:
        height, width = image.shape[:2]
        input_height, input_width = self.runtime.input_size
        frame = fit_frame(image, (input_height, input_width))  # the node's rule, so both see the same pixels
        if self.runtime.input_format == "BGR":
            frame = frame[..., ::-1]
        out = {name: value[0] for name, value in self.runtime.run(np.ascontiguousarray(frame)[None], 0.0).items()}
        out["anomaly"] = out["anomaly"].astype(np.float32)
        out_height, out_width = out["anomaly"].shape
        if (out_height, out_width) != (height, width):
            out = {
                name: _resize_output(name, value, (out_height, out_width), (height, width))
                for name, value in out.items()
            }
        return ImageOutputs(heads=out, scores={self.primary: out["anomaly"]})


def _resize_output(name: str, value: np.ndarray, size: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    height, width = target
    if name == "mask_area":
        return np.round(value.astype(np.float64) * (height * width) / (size[0] * size[1])).astype(value.dtype)
    if value.shape != size:
        return value
    if name == "anomaly":
        return resize_map(value, target, ids=False)
    return resize_map(value.astype(np.uint8), target, ids=True).astype(value.dtype)


def open_predictor(
    path: str | Path, scores: Sequence[str] | None = None, size: tuple[int, int] | None = None, device: str = "cpu"
) -> Predictor:
    """A checkpoint (``.safetensors``) or an exported model (``.onnx``/``.engine``/``.plan``)."""
    path = Path(path)
    if not path.exists():
        raise AnomaskError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return CheckpointPredictor(path, scores, size, device)
    if suffix in EXPORTED_SUFFIXES:
        if size is not None:
            raise AnomaskError(f"{path}: an exported model fixes its input size at export; drop --size")
        options: dict[str, object] = {}
        if suffix == ".onnx" and device == "cpu":
            # CPU only, and no spinning worker threads (they would steal a shared CPU).
            options.update(providers=["CPUExecutionProvider"], spin=False)
        return ExportedPredictor(open_runtime(str(path), **options), scores)
    raise AnomaskError(f"{path}: not a model file; expected {', '.join(CHECKPOINT_SUFFIXES + EXPORTED_SUFFIXES)}")
