"""Resizing between camera frames, the graph's input and the published outputs.

One rule for every path that feeds or reads an exported graph (export calibration, the ROS
node, evaluation of an exported model), so their pixels agree: frames are shrunk by area
averaging (no aliasing from a 1080p camera down to the network input) and enlarged
bilinearly; id maps (semantic, open-set, panoptic, mask ids) are resized by nearest
neighbour so no class is invented between two others, score maps bilinearly.
"""

from __future__ import annotations

import cv2
import numpy as np


def fit_frame(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pixels`` (``[H, W]`` or ``[H, W, C]``) at ``size`` = (height, width): area
    averaging when either side shrinks, bilinear otherwise; the input itself when it fits."""
    height, width = size
    if pixels.shape[:2] == (height, width):
        return pixels
    shrink = pixels.shape[0] > height or pixels.shape[1] > width
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_map(values: np.ndarray, size: tuple[int, int], ids: bool, out: np.ndarray | None = None) -> np.ndarray:
    """An output map at ``size`` = (height, width): nearest neighbour for id maps
    (``ids=True``), bilinear for scores; the input itself when it fits. ``out`` (an array of
    ``values``' dtype at ``size``, e.g. a message's buffer) receives the result instead."""
    height, width = size
    if values.shape[:2] == (height, width):
        if out is None:
            return values
        np.copyto(out, values)
        return out
    interpolation = cv2.INTER_NEAREST if ids else cv2.INTER_LINEAR
    return cv2.resize(values, (width, height), dst=out, interpolation=interpolation)
