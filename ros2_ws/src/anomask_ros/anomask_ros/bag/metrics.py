"""The metrics of a bag evaluation, all computed by ``anomask.evaluation``; this module only
feeds them one frame at a time and collects what a replay adds (frames in and out, drops,
latency, output age).

Which metrics a bag gets depends on its ground truth:

- anomaly: pixel AP, AUROC, FPR95 (``PixelAnomalyAccumulator``); component sIoU, PPV, F1* (``ComponentAccumulator``
  at the pixel-F1-optimal threshold, SMIYC); prediction used: ``anomaly`` score
- semantic: mIoU (``SemanticAccumulator``); open-IoU (``OpenSetAccumulator``); prediction used: ``semantic``; the
  published ``open_set`` map (254 = unknown at the node's threshold)
- semantic + instances: PQ/SQ/RQ (``PanopticAccumulator``); prediction used: ``panoptic``

Component metrics need the pixel threshold first (a second pass): each frame's score and
anomaly ground truth are spilled to a temporary folder, so memory stays bounded.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.components import ComponentAccumulator
from anomask.evaluation.metrics.panoptic import PanopticAccumulator, split_panoptic
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.metrics.semantic import OpenSetAccumulator
from anomask.models.metadata import UNKNOWN_ID, ModelMetadata
from anomask_ros.outputs import FrameOutputs

METRICS = ("anomaly", "components", "semantic", "open_set", "panoptic")


def _unavailable(reason: str) -> dict[str, str]:
    return {"unavailable": reason}


class QualityMetrics:
    """Streams (prediction, ground truth) frames into the evaluation accumulators."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata
        self.pixel = PixelAnomalyAccumulator()
        self.open_set = OpenSetAccumulator(metadata.num_classes, threshold=0.5)
        self.panoptic = PanopticAccumulator(metadata.classes)
        self.thing = [c.is_thing for c in metadata.classes]
        self.frames = dict.fromkeys(("anomaly", "semantic", "panoptic"), 0)
        self._spill = tempfile.TemporaryDirectory(prefix="anomask-bag-eval-")
        self._spilled: list[Path] = []

    def add(self, maps: FrameOutputs, truth: dict[str, np.ndarray], name: str) -> None:
        """One frame; ``maps`` at the ground truth's size."""
        if "anomaly" in truth:
            self.pixel.update(maps.anomaly, truth["anomaly"], name)
            path = Path(self._spill.name) / f"{len(self._spilled)}.npz"
            np.savez(path, score=maps.anomaly, truth=truth["anomaly"], name=name)
            self._spilled.append(path)
            self.frames["anomaly"] += 1
        if "semantic" in truth:
            # open_set's unknown pixels as a 0/1 score at threshold 0.5: open-IoU of the map
            # the node published, at the threshold it ran with.
            unknown = (maps.open_set == UNKNOWN_ID).astype(np.float32)
            self.open_set.update(maps.semantic, unknown, truth["semantic"], name)
            self.frames["semantic"] += 1
            if "instances" in truth and maps.panoptic is not None:
                classes, instances = split_panoptic(maps.panoptic, self.thing, name)
                self.panoptic.update_labels(classes, instances, truth["semantic"], truth["instances"], name)
                self.frames["panoptic"] += 1

    def _components(self, threshold: float) -> dict:
        accumulator = ComponentAccumulator(threshold)
        for path in self._spilled:
            with np.load(path) as spilled:
                accumulator.update(spilled["score"], spilled["truth"], str(spilled["name"]))
        return accumulator.result().to_dict()

    def result(self) -> dict[str, dict]:
        """Every metric's ``to_dict()``, or ``{"unavailable": reason}``."""
        out: dict[str, dict] = {}
        try:
            if not self.frames["anomaly"]:
                raise AnomaskError("no anomaly ground truth (/C/gt/anomaly)")
            pixel = self.pixel.result()
            out["anomaly"] = pixel.to_dict()
            try:
                out["components"] = self._components(pixel.best_f1_threshold)
            except AnomaskError as error:
                out["components"] = _unavailable(str(error))
        except AnomaskError as error:
            out["anomaly"] = out["components"] = _unavailable(str(error))
        if self.frames["semantic"]:
            result = self.open_set.result()
            out["semantic"] = {"miou": result.miou, "iou": list(result.iou)}
            out["open_set"] = {"open_miou": result.open_miou, "open_iou": list(result.open_iou)}
        else:
            out["semantic"] = out["open_set"] = _unavailable("no semantic ground truth (/C/gt/semantic)")
        if self.frames["panoptic"]:
            out["panoptic"] = self.panoptic.result().to_dict()
        else:
            out["panoptic"] = _unavailable(
                "no panoptic ground truth (/C/gt/semantic with /C/gt/instances) or no panoptic output"
            )
        for key, frames in self.frames.items():
            out.setdefault("frames_evaluated", {})[key] = frames
        return out

    def close(self) -> None:
        self._spill.cleanup()


def summary(values: list[float]) -> dict[str, float] | None:
    """p50, p99, mean, max of per-frame values in ms; None when there are none."""
    if not values:
        return None
    array = np.asarray(values, dtype=np.float64)
    p50, p99 = np.percentile(array, (50, 99))
    return {
        "p50": float(p50),
        "p99": float(p99),
        "mean": float(array.mean()),
        "max": float(array.max()),
        "frames": int(array.size),
    }


@dataclass
class ReplayCounts:
    """What a replay shows per camera: frames in (camera frames in the bag), frames out
    (frames with outputs matched by stamp), and per-frame timing."""

    frames_in: dict[str, int] = field(default_factory=dict)
    frames_out: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    """camera -> reason -> frames (offline: the decoder's reasons; replay: "no output")."""
    latency_ms: list[float] = field(default_factory=list)
    age_ms: list[float] = field(default_factory=list)
    processing_ms: list[float] = field(default_factory=list)
    per_frame: list[dict] = field(default_factory=list)

    def frame_in(self, camera: str) -> None:
        self.frames_in[camera] = self.frames_in.get(camera, 0) + 1
        self.frames_out.setdefault(camera, 0)

    def frame_out(self, camera: str, stamp_ns: int, **timing: float | None) -> None:
        self.frames_out[camera] += 1
        for key, value in timing.items():
            if value is not None:
                getattr(self, key).append(value)
        self.per_frame.append({"camera": camera, "stamp_ns": stamp_ns, **timing})

    def drop(self, camera: str, reason: str) -> None:
        drops = self.dropped.setdefault(camera, {})
        drops[reason] = drops.get(reason, 0) + 1

    def to_dict(self) -> dict:
        frames_in, frames_out = sum(self.frames_in.values()), sum(self.frames_out.values())
        return {
            "frames_in": frames_in,
            "frames_out": frames_out,
            "dropped": frames_in - frames_out,
            "per_camera": {
                c: {"in": self.frames_in[c], "out": self.frames_out[c], "dropped": self.dropped.get(c, {})}
                for c in self.frames_in
            },
            "latency_ms": summary(self.latency_ms),
            "age_ms": summary(self.age_ms),
            "processing_ms": summary(self.processing_ms),
        }
