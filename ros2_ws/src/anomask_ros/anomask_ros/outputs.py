"""One frame's runtime outputs -> the node's output messages (and the optional rgb8 views).

Sizes: ``output_resolution = input`` resizes every map back to the camera frame's size
(nearest for ids, bilinear for the score), nothing when the graph already returns that size
(``anomask export --output-size``, ``anomask.export.graph.OutputResize``); ``network``
publishes them as the runtime returned them. Every map is resized (or copied) once, straight
into its message's buffer. Every message carries the input's header.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomask.export.frames import resize_map
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ModelMetadata
from anomask_ros.image_codec import allocate_image

UNKNOWN_COLOR = (255, 255, 255)
IGNORE_COLOR = (0, 0, 0)
_INSTANCE_SHIFT = np.array([47, 101, 157], dtype=np.int32)
"""Per-instance colour offset, so instances of one class stay apart in panoptic_color."""


@dataclass(frozen=True)
class FrameOutputs:
    """One frame's maps, at the runtime's resolution (``Segmenter.run`` makes them; anomaly
    and open_set are None only in a bag evaluation of a recording without them, panoptic
    when no panoptic image was asked for)."""

    semantic: np.ndarray
    anomaly: np.ndarray | None
    open_set: np.ndarray | None
    panoptic: np.ndarray | None


def ids_at(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An id map (semantic, open-set, panoptic) at ``size``: nearest neighbour."""
    return resize_map(values, size, ids=True)


def scores_at(anomaly: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The float32 anomaly score at ``size``: bilinear."""
    return resize_map(anomaly.astype(np.float32, copy=False), size, ids=False)


def maps_at(frame: FrameOutputs, size: tuple[int, int]) -> FrameOutputs:
    """Every map of ``frame`` at ``size``, as the node publishes them with
    ``output_resolution: input`` (the bag evaluation uses this too); absent maps (None)
    stay absent."""
    return FrameOutputs(
        semantic=ids_at(frame.semantic, size),
        anomaly=None if frame.anomaly is None else scores_at(frame.anomaly, size),
        open_set=None if frame.open_set is None else ids_at(frame.open_set, size),
        panoptic=None if frame.panoptic is None else ids_at(frame.panoptic.astype(np.int32, copy=False), size),
    )


class OutputBuilder:
    def __init__(self, metadata: ModelMetadata, wanted: tuple[str, ...], label_encoding: str) -> None:
        self.wanted = frozenset(wanted)
        self.label_encoding = label_encoding
        lut = np.zeros((256, 3), np.uint8)
        lut[: metadata.num_classes] = np.asarray(metadata.palette, np.uint8).reshape(-1, 3)
        lut[UNKNOWN_ID] = UNKNOWN_COLOR
        lut[IGNORE_ID] = IGNORE_COLOR
        self.lut = lut
        self._messages: dict[tuple[str, tuple[int, int]], tuple[Image, np.ndarray]] = {}

    def _message(self, name: str, size: tuple[int, int], encoding: str, header: Header) -> tuple[Image, np.ndarray]:
        """(message, a numpy view of its pixels) for output ``name`` at ``size``, stamped with
        ``header``: one per output and size, reused by every frame (``publish`` has copied it
        by the next call), so no frame pays for allocating and faulting in its buffers."""
        key = (name, size)
        if key not in self._messages:
            self._messages[key] = allocate_image(header, *size, encoding)
        msg, view = self._messages[key]
        msg.header = Header(stamp=header.stamp, frame_id=header.frame_id)
        return msg, view

    def _map(
        self, name: str, values: np.ndarray, size: tuple[int, int], ids: bool, encoding: str, header: Header
    ) -> tuple[Image, np.ndarray]:
        """``values`` at ``size`` (``resize_map``'s rule) written straight into the message
        of output ``name``: one pass (mono8 ids widened on the way for 16UC1)."""
        msg, view = self._message(name, size, encoding, header)
        if view.dtype == values.dtype:
            resize_map(values, size, ids, out=view)
        else:
            view[...] = resize_map(values, size, ids)
        return msg, view

    def messages(
        self,
        frame: FrameOutputs,
        size: tuple[int, int],
        header: Header,
        threshold: float,
        color_range: tuple[float, float],
    ) -> tuple[dict[str, Image], float]:
        """The wanted messages, and the frame's share of pixels scoring above
        ``threshold`` (the whole-frame alarm's input). Colour views are computed at the
        runtime's resolution and then resized (nearest), which for the id maps equals
        colouring the resized ids, at a fraction of the pixels. The messages are this
        builder's own, rewritten by its next call: publish them before that."""
        out: dict[str, Image] = {}
        scores = frame.anomaly.astype(np.float32, copy=False)
        out["anomaly"], anomaly = self._map("anomaly", scores, size, False, "32FC1", header)
        if "anomaly_mask" in self.wanted:
            out["anomaly_mask"], mask = self._message("anomaly_mask", size, "mono8", header)
            np.greater(anomaly, threshold, out=mask.view(bool))
            share = np.count_nonzero(mask) / mask.size
            mask *= 255
        else:
            share = np.count_nonzero(anomaly > threshold) / anomaly.size
        for name in ("semantic", "open_set"):
            if name in self.wanted:
                out[name] = self._map(name, getattr(frame, name), size, True, self.label_encoding, header)[0]
        if frame.panoptic is not None and "panoptic" in self.wanted:
            panoptic = frame.panoptic.astype(np.int32, copy=False)
            out["panoptic"] = self._map("panoptic", panoptic, size, True, "32SC1", header)[0]
        views = {
            "semantic_color": lambda: self.lut[frame.semantic],
            "panoptic_color": lambda: self.panoptic_colors(frame.panoptic),
            "anomaly_color": lambda: self.heat_map(scores, color_range),
        }
        for name, colors in views.items():
            if name in self.wanted and (name != "panoptic_color" or frame.panoptic is not None):
                out[name] = self._map(name, colors(), size, name != "anomaly_color", "rgb8", header)[0]
        if "anomaly" not in self.wanted:
            del out["anomaly"]
        return out, float(share)

    def panoptic_colors(self, panoptic: np.ndarray) -> np.ndarray:
        """Class colour per segment; thing and unknown instances (value >= 1000) shifted
        by a per-instance offset."""
        panoptic = panoptic.astype(np.int32, copy=False)
        is_instance = panoptic >= 1000
        classes = np.where(is_instance, panoptic // 1000, panoptic).clip(0, 255)
        instances = np.where(is_instance, panoptic % 1000, 0)
        colors = self.lut[classes].astype(np.int32)
        colors += instances[..., None] * _INSTANCE_SHIFT
        return (colors % 256).astype(np.uint8)

    @staticmethod
    def heat_map(anomaly: np.ndarray, color_range: tuple[float, float]) -> np.ndarray:
        """rgb8 inferno map of the score, ``color_range`` stretched to the full scale."""
        low, high = color_range
        scaled = np.clip((anomaly - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)

    def needs_panoptic(self) -> bool:
        return bool({"panoptic", "panoptic_color"} & self.wanted)
