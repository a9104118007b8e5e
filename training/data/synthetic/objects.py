"""Anomaly objects cut from the real photographs shipped with scikit-image.

Each object is segmented by a documented, deterministic method (GrabCut runs with a fixed
OpenCV seed at half resolution). The objects form two disjoint groups, as the seen (category
A) and unseen (category B) anomalies of UNO (Delić et al., 2024), Table 8: ``seen`` objects
may be pasted as training negatives (:func:`seen_negatives`); ``unseen`` ones appear only in
the synthetic test split.

- cat: chelsea.png; group: seen; segmentation: GrabCut from an elliptical head prior (inner ellipse sure foreground,
  outer ellipse and right ear probable, rest background)
- coffee: coffee.png; group: seen; segmentation: GrabCut from elliptical priors of the saucer and the cup
- coins: coins.png; group: seen; segmentation: Otsu threshold of the blurred photo, holes filled, the coins wholly
  inside a 200x130 window
- logo: logo.png; group: seen; segmentation: every pixel that is not near-white (min RGB < 230), closed with a 41-px
  disc (bridges the white band), holes filled, largest component
- horse: horse.png; group: unseen; segmentation: the photo is a black silhouette: pixels darker than 128, largest
  component; coloured bay brown with a gravel-texture grain and top-down shading
- motorcycle: motorcycle_left.png; group: unseen; segmentation: GrabCut from a rectangle plus sure-foreground
  strokes (tank, seat, engine, hubs, headlight, fork) and sure-background patches (floor under the engine, bench,
  shelves, a box behind the fork)
- rocket: rocket.jpg; group: unseen; segmentation: GrabCut from a tight rectangle around the rocket, largest
  component
- shuttle: astronaut.png; group: unseen; segmentation: GrabCut from a rectangle around the space-shuttle model,
  largest component
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import skimage

from anomask.errors import AnomaskError
from anomask.training.data.negatives import ArrayNegatives, Negative, crop_to_mask

Group = Literal["seen", "unseen"]
GROUPS: tuple[Group, ...] = ("seen", "unseen")
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


def read_photo(name: str) -> np.ndarray:
    """A scikit-image photo as uint8 RGB (grey photos are replicated to 3 channels)."""
    image = cv2.imread(str(SKIMAGE_DATA / name), cv2.IMREAD_COLOR)
    if image is None:
        raise AnomaskError(f"{SKIMAGE_DATA / name}: scikit-image photo not found (is scikit-image installed?)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask.astype(bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background = what a flood fill from the border reaches; everything else is object."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    return (flood != 2)[1:-1, 1:-1]


def _grabcut(image: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """GrabCut at half resolution from a prior of cv2.GC_* labels; deterministic (seeded)."""
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    labels = cv2.resize(prior, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    cv2.setRNGSeed(0)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, None, background, foreground, 5, cv2.GC_INIT_WITH_MASK)
    result = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    result = cv2.resize(result, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _fill_holes(_largest_component(result > 0))


def _prior(shape: tuple[int, ...], probable: list, sure: list, sure_background: list = ()) -> np.ndarray:
    """GrabCut labels from shapes: ``("ellipse", cx, cy, ax, ay)``, ``("rect", x0, y0, x1, y1)``
    or ``("poly", [(x, y), ...])``; unlisted pixels are sure background."""
    prior = np.full(shape[:2], cv2.GC_BGD, dtype=np.uint8)
    for value, shapes in ((cv2.GC_PR_FGD, probable), (cv2.GC_FGD, sure), (cv2.GC_BGD, sure_background)):
        for kind, *args in shapes:
            if kind == "ellipse":
                cx, cy, ax, ay = args
                cv2.ellipse(prior, (cx, cy), (ax, ay), 0, 0, 360, int(value), -1)
            elif kind == "rect":
                x0, y0, x1, y1 = args
                prior[y0:y1, x0:x1] = value
            else:
                cv2.fillPoly(prior, [np.asarray(args[0], dtype=np.int32)], int(value))
    return prior


def _cat(image: np.ndarray) -> np.ndarray:
    probable = [("ellipse", 195, 150, 190, 160), ("poly", [(310, 70), (395, 0), (420, 0), (380, 110)])]
    return _grabcut(image, _prior(image.shape, probable, [("ellipse", 200, 160, 110, 100)]))


def _coffee(image: np.ndarray) -> np.ndarray:
    probable = [("ellipse", 278, 242, 215, 152), ("ellipse", 290, 82, 128, 78)]
    sure = [("ellipse", 278, 250, 150, 100), ("ellipse", 290, 110, 90, 70)]
    return _grabcut(image, _prior(image.shape, probable, sure))


def _coins(image: np.ndarray) -> np.ndarray:
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    _, binary = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(_fill_holes(binary).astype(np.uint8))
    x0, y0, x1, y1 = 130, 165, 330, 295
    mask = np.zeros(binary.shape, dtype=bool)
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area >= 50 and x >= x0 and y >= y0 and x + w <= x1 and y + h <= y1:
            mask |= labels == i
    return mask


def _logo(image: np.ndarray) -> np.ndarray:
    # A closing bridges the white S-band between the two halves, so the disc is one object.
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (41, 41))
    padded = np.pad((image.min(axis=2) < 230).astype(np.uint8), 30)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disc)[30:-30, 30:-30]
    return _fill_holes(_largest_component(closed > 0))


def _horse(image: np.ndarray) -> np.ndarray:
    return _fill_holes(_largest_component(image.max(axis=2) < 128))


def _horse_colours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bay brown, shaded darker towards the legs, with the grain of the gravel photo."""
    grain = cv2.resize(read_photo("gravel.png")[..., 0], (image.shape[1], image.shape[0])).astype(np.float32) / 255
    shade = np.linspace(1.15, 0.7, image.shape[0], dtype=np.float32)[:, None]
    brown = np.array([110, 62, 30], dtype=np.float32)
    coloured = brown * (shade * (0.75 + 0.5 * grain))[..., None]
    return np.where(mask[..., None], np.clip(coloured, 0, 255), image).astype(np.uint8)


def _motorcycle(image: np.ndarray) -> np.ndarray:
    sure = [
        ("rect", 270, 185, 460, 240),  # tank and side cover
        ("rect", 170, 170, 320, 195),  # seat
        ("rect", 350, 250, 460, 340),  # engine
        ("ellipse", 195, 320, 35, 35),  # rear hub
        ("ellipse", 600, 375, 30, 30),  # front hub
        ("ellipse", 535, 155, 22, 22),  # headlight
        ("poly", [(520, 185), (548, 185), (612, 370), (590, 378)]),  # fork
    ]
    background = [
        ("poly", [(300, 445), (500, 445), (505, 390), (470, 372), (345, 372), (290, 390)]),  # floor
        ("rect", 95, 90, 320, 160),  # bench behind the seat
        ("rect", 95, 90, 470, 112),  # shelves
        ("rect", 572, 178, 630, 252),  # red box behind the fork
    ]
    return _grabcut(image, _prior(image.shape, [("rect", 95, 90, 690, 445)], sure, background))


def _rocket(image: np.ndarray) -> np.ndarray:
    return _grabcut(image, _prior(image.shape, [("rect", 298, 120, 352, 412)], [("rect", 315, 160, 332, 360)]))


def _shuttle(image: np.ndarray) -> np.ndarray:
    return _grabcut(image, _prior(image.shape, [("rect", 350, 0, 478, 292)], [("rect", 395, 40, 430, 200)]))


@dataclass(frozen=True)
class AnomalySource:
    name: str
    photo: str
    group: Group
    height_m: tuple[float, float]
    """Range of the object's real height when placed in a scene (metres)."""
    segment: Callable[[np.ndarray], np.ndarray]
    recolour: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


SOURCES: tuple[AnomalySource, ...] = (
    AnomalySource("cat", "chelsea.png", "seen", (0.5, 0.9), _cat),
    AnomalySource("coffee", "coffee.png", "seen", (0.4, 0.8), _coffee),
    AnomalySource("coins", "coins.png", "seen", (0.3, 0.6), _coins),
    AnomalySource("logo", "logo.png", "seen", (0.6, 1.2), _logo),
    AnomalySource("horse", "horse.png", "unseen", (1.5, 1.8), _horse, _horse_colours),
    AnomalySource("motorcycle", "motorcycle_left.png", "unseen", (1.0, 1.3), _motorcycle),
    AnomalySource("rocket", "rocket.jpg", "unseen", (1.2, 2.2), _rocket),
    AnomalySource("shuttle", "astronaut.png", "unseen", (0.8, 1.5), _shuttle),
)


@dataclass(frozen=True)
class Cutout:
    source: AnomalySource
    negative: Negative


@cache
def cutouts(group: Group) -> tuple[Cutout, ...]:
    """The group's objects, cut and cropped to their masks (computed once per process)."""
    if group not in GROUPS:
        raise AnomaskError(f"anomaly group must be one of {', '.join(GROUPS)}, not {group!r}")
    out = []
    for source in SOURCES:
        if source.group != group:
            continue
        image = read_photo(source.photo)
        mask = source.segment(image)
        if source.recolour is not None:
            image = source.recolour(image, mask)
        out.append(Cutout(source, crop_to_mask(image, mask, source.name)))
    return tuple(out)


def seen_negatives() -> ArrayNegatives:
    """The ``seen`` objects as a negative pool for training (never the ``unseen`` ones)."""
    return ArrayNegatives([c.negative for c in cutouts("seen")], source="synthetic seen anomaly objects")
