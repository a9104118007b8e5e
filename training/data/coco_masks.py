"""COCO instance segmentations to binary masks, without pycocotools.

A segmentation is a list of polygons ``[[x0, y0, x1, y1, ...], ...]`` or a run-length
encoding ``{"size": [h, w], "counts": ...}``: runs alternate background/foreground,
start with background and walk the image column by column; ``counts`` is a list of run
lengths or COCO's compact string (6-bit characters offset by 48, 5 payload bits with a
continuation bit, sign-extended, runs after the second stored as the difference to the
run two before).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from anomask.errors import AnomaskError


def decode_rle_string(counts: str) -> list[int]:
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            chunk = ord(counts[position]) - 48
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            position += 1
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = decode_rle_string(counts) if isinstance(counts, str) else [int(v) for v in counts]
    if sum(runs) != height * width or min(runs, default=0) < 0:
        raise ValueError(f"run lengths sum to {sum(runs)}, expected {height * width}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    shapes = [
        np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32) for p in polygons if len(p) >= 6
    ]
    cv2.fillPoly(mask, shapes, 1)
    return mask.astype(bool)


def segmentation_to_mask(segmentation: Any, height: int, width: int, source: str) -> np.ndarray:
    """Any COCO segmentation -> bool ``[height, width]``; a malformed one names ``source``."""
    try:
        if isinstance(segmentation, list):
            return polygons_to_mask(segmentation, height, width)
        mask = rle_to_mask(segmentation)
    except (KeyError, TypeError, ValueError) as error:
        raise AnomaskError(f"{source}: malformed segmentation ({error})") from error
    if mask.shape != (height, width):
        raise AnomaskError(f"{source}: RLE size {mask.shape} does not match the image {height}x{width}")
    return mask
