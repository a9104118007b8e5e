"""One synthetic driving frame: a pinhole camera over a flat world, rendered in numpy.

Geometry (metres): camera at height ``hc`` looking along +Z; a straight road, turned by
a small yaw, whose lateral coordinate is ``u = X - slope * Z``. A ground pixel at row y
lies at depth ``Z = f * hc / (y - horizon)``. Road, lane marks, crossings, sidewalks and
terrain are classified from ``u`` and textured in world coordinates (perspective-correct,
mip-mapped). Facades are vertical planes at the street's outer edges, solved per column;
their segments are buildings (brick colours, window grid), hedges or gaps. Trees, poles
with signs, cars, pedestrians and (test split) anomaly objects are sprites at their
projected size, painted far to near (occlusion). Then lighting and weather: gain and
colour temperature, dusk, fog by depth, rain streaks, motion blur, sensor noise, an
optional ego-vehicle hood (void).

Everything random comes from one ``numpy.random.Generator``; the same generator state
gives the same frame, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data.classes import ClassList
from anomask.training.data.pasting import resize_negative
from anomask.training.data.synthetic.objects import Cutout
from anomask.training.data.synthetic.textures import brick, grass, gravel

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = range(10)
SYNTH_CLASSES = ClassList(
    (
        ClassInfo("road", False, (128, 64, 128)),
        ClassInfo("sidewalk", False, (244, 35, 232)),
        ClassInfo("building", False, (70, 70, 70)),
        ClassInfo("pole", False, (153, 153, 153)),
        ClassInfo("traffic sign", False, (220, 220, 0)),
        ClassInfo("vegetation", False, (107, 142, 35)),
        ClassInfo("terrain", False, (152, 251, 152)),
        ClassInfo("sky", False, (70, 130, 180)),
        ClassInfo("person", True, (220, 20, 60)),
        ClassInfo("car", True, (0, 0, 142)),
    ),
    (7, 8, 11, 17, 20, 21, 22, 23, 24, 26),
)
"""Ten Cityscapes classes with their official label ids and colours."""
ANOMALY = UNKNOWN_ID
"""Semantic value of anomaly pixels in a rendered frame."""
TRANSPARENT = 253
"""Sprite class value of pixels the sprite does not cover."""
FAR = 1e4
IS_GROUND = np.isin(np.arange(256), (ROAD, SIDEWALK, TERRAIN))


@dataclass(frozen=True)
class Camera:
    height: int
    width: int
    focal: float
    cx: float
    horizon: float
    """Image row of the horizon (encodes the pitch)."""
    elevation: float
    """Camera height above the road (m)."""

    def column(self, X: float, Z: float) -> float:
        return self.cx + self.focal * X / Z

    def row(self, Z: float, above_ground: float = 0.0) -> float:
        return self.horizon + self.focal * (self.elevation - above_ground) / Z


@dataclass(frozen=True)
class Street:
    road_left: float
    """Lateral coordinate u of the road's left edge (camera at u = 0)."""
    lanes: int
    lane_width: float
    slope: float
    """tan(yaw): the road runs along u = X - slope * Z."""
    sidewalk: tuple[float, float]
    terrain: tuple[float, float]

    @property
    def road_right(self) -> float:
        return self.road_left + self.lanes * self.lane_width

    @property
    def facades(self) -> tuple[float, float]:
        """Lateral coordinates of the left and right facade lines."""
        return (
            self.road_left - self.sidewalk[0] - self.terrain[0],
            self.road_right + self.sidewalk[1] + self.terrain[1],
        )


@dataclass
class Instance:
    id: int
    category: int
    """Train id, or :data:`ANOMALY`."""
    name: str = ""
    group: str = ""


@dataclass
class Frame:
    image: np.ndarray
    """uint8 ``[H, W, 3]`` RGB."""
    semantic: np.ndarray
    """uint8: train ids, 254 on anomalies, 255 on the ego vehicle."""
    instances: np.ndarray
    """int32: 1..n per thing or anomaly instance, 0 elsewhere."""
    objects: list[Instance] = field(default_factory=list)


@dataclass
class _Canvas:
    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    depth: np.ndarray
    objects: list[Instance] = field(default_factory=list)

    def new_instance(self, category: int, name: str = "", group: str = "") -> int:
        instance = Instance(len(self.objects) + 1, category, name, group)
        self.objects.append(instance)
        return instance.id


@dataclass
class _Sprite:
    """A screen-space object: ``rgb`` float ``[h, w, 3]``, ``labels`` uint8 (TRANSPARENT
    where empty), bottom-centre at ``(x, y)`` in pixels, depth ``Z``."""

    X: float
    Z: float
    width_m: float
    rgb: np.ndarray
    labels: np.ndarray
    x: float
    y: float
    instance_category: int | None = None
    name: str = ""
    group: str = ""
    shadow: bool = False

    def box(self) -> tuple[int, int, int, int]:
        h, w = self.labels.shape
        left, top = int(round(self.x - w / 2)), int(round(self.y - h))
        return top, left, top + h, left + w


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


# --------------------------------------------------------------------------- layout


def _camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    focal = width * _uniform(rng, 0.95, 1.15)
    return Camera(
        height,
        width,
        focal,
        cx=width * _uniform(rng, 0.48, 0.52),
        horizon=height * _uniform(rng, 0.36, 0.5),
        elevation=_uniform(rng, 1.2, 2.2),
    )


def _street(rng: np.random.Generator) -> Street:
    lanes = int(rng.integers(2, 5))
    lane_width = _uniform(rng, 3.0, 3.6)
    own_lane = int(rng.integers(lanes))
    road_left = -(own_lane + 0.5) * lane_width + _uniform(rng, -0.4, 0.4)
    sidewalk = (_uniform(rng, 1.5, 4.5), _uniform(rng, 1.5, 4.5))
    terrain = tuple(0.0 if rng.random() < 0.5 else _uniform(rng, 1.0, 6.0) for _ in range(2))
    return Street(road_left, lanes, lane_width, float(np.tan(np.radians(rng.uniform(-6, 6)))), sidewalk, terrain)


# --------------------------------------------------------------------------- background


def _sky(canvas: _Canvas, camera: Camera, rng: np.random.Generator) -> None:
    h, w = camera.height, camera.width
    overcast = rng.random() < 0.3
    zenith = np.array([165, 170, 178] if overcast else [60, 115, 190], dtype=np.float32) * _uniform(rng, 0.9, 1.1)
    horizon = np.array([200, 202, 206] if overcast else [185, 205, 228], dtype=np.float32)
    t = np.clip((np.arange(h, dtype=np.float32) / max(camera.horizon, 1.0))[:, None, None], 0, 1)
    canvas.image[:] = zenith * (1 - t) + horizon * t
    noise = cv2.resize(rng.random((4, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    clouds = np.clip((noise - _uniform(rng, 0.45, 0.8)) * 3, 0, 1)[..., None]
    canvas.image[:] = canvas.image * (1 - clouds) + np.float32(235) * clouds
    canvas.semantic[:] = SKY


def _far_band(canvas: _Canvas, camera: Camera, rng: np.random.Generator) -> None:
    """Distant tree line or skyline just above the horizon."""
    w = camera.width
    skyline = rng.random() < 0.5
    if skyline:
        blocks = rng.uniform(0.01, 0.07, size=int(rng.integers(8, 20))) * camera.height
        heights = np.repeat(blocks, int(np.ceil(w / blocks.size)))[:w]
    else:
        heights = cv2.resize(rng.uniform(0.01, 0.05, size=(1, 12)).astype(np.float32), (w, 1), interpolation=cv2.INTER_CUBIC)[0]
        heights = heights * camera.height
    rows = np.arange(camera.height, dtype=np.float32)[:, None]
    band = (rows >= camera.horizon - heights[None, :]) & (rows < camera.horizon + 1)
    colour = np.array([120, 125, 135] if skyline else [70, 95, 70], dtype=np.float32)
    canvas.image[band] = colour
    canvas.semantic[band] = BUILDING if skyline else VEGETATION
    canvas.depth[band] = 400.0


def _ground(canvas: _Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    top = int(np.floor(camera.horizon)) + 1
    rows = np.arange(top, camera.height, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(camera.width, dtype=np.float32)[None, :] + 0.5
    Z = np.minimum(camera.focal * camera.elevation / (rows - camera.horizon), 400.0) * np.ones_like(cols)
    X = (cols - camera.cx) * Z / camera.focal
    u = X - street.slope * Z
    footprint = Z * Z / (camera.focal * camera.elevation)  # metres per pixel along the road
    left_walk, right_walk = street.road_left - street.sidewalk[0], street.road_right + street.sidewalk[1]
    road = (u >= street.road_left) & (u < street.road_right)
    walk = ((u >= left_walk) & (u < street.road_left)) | ((u >= street.road_right) & (u < right_walk))
    labels = np.where(road, ROAD, np.where(walk, SIDEWALK, TERRAIN)).astype(np.uint8)

    asphalt = np.array([95, 95, 100], dtype=np.float32) * _uniform(rng, 0.75, 1.15)
    paving = np.array([165, 160, 150], dtype=np.float32) * _uniform(rng, 0.85, 1.1)
    turf = np.array([95, 115, 55], dtype=np.float32) * _uniform(rng, 0.8, 1.15)
    offset = rng.uniform(0, 512, size=2)
    colour = np.empty((*labels.shape, 3), dtype=np.float32)
    for where, texture, texels, contrast, base in (
        (road, gravel(), 90, 0.3, asphalt),
        (walk, brick(), 60, 0.35, paving),
        (~road & ~walk, grass(), 120, 0.6, turf),
    ):
        shade = texture.sample(u[where] * texels + offset[0], Z[where] * texels + offset[1], footprint[where] * texels, contrast)
        colour[where] = base * shade[:, None]

    # curbs, lane marks and an optional zebra crossing (all labelled road or sidewalk)
    curb = walk & ((np.abs(u - street.road_left) < 0.2) | (np.abs(u - street.road_right) < 0.2))
    colour[curb] *= 1.25
    half_line = 0.07
    marks = np.zeros_like(road)
    for k in range(1, street.lanes):
        boundary = street.road_left + k * street.lane_width
        marks |= (np.abs(u - boundary) < half_line) & (np.mod(Z, 10.0) < 3.5)
    marks |= np.abs(u - street.road_left - 0.3) < half_line
    marks |= np.abs(u - street.road_right + 0.3) < half_line
    if rng.random() < 0.25:
        start = _uniform(rng, 8, 30)
        marks |= (Z >= start) & (Z < start + 3.0) & (np.mod(u, 1.0) < 0.5)
    marks &= road
    colour[marks] = colour[marks] * 0.25 + np.float32(200) * 0.75
    canvas.image[top:] = colour
    canvas.semantic[top:] = labels
    canvas.depth[top:] = Z


def _facade_segments(rng: np.random.Generator) -> list[tuple[float, float, str, float, np.ndarray]]:
    """(start Z, end Z, kind, height, colour) along one side."""
    segments, z = [], _uniform(rng, -5, 3)
    palette = ((150, 85, 65), (190, 172, 140), (140, 140, 142), (205, 203, 195), (105, 98, 92), (170, 120, 90))
    while z < 260:
        length = _uniform(rng, 8, 30)
        roll = rng.random()
        kind = "building" if roll < 0.72 else "hedge" if roll < 0.9 else "gap"
        height = _uniform(rng, 6, 26) if kind == "building" else _uniform(rng, 2.5, 9)
        colour = np.array(palette[int(rng.integers(len(palette)))], dtype=np.float32) * _uniform(rng, 0.85, 1.1)
        segments.append((z, z + length, kind, height, colour))
        z += length
    return segments


def _facades(canvas: _Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    cols = np.arange(camera.width, dtype=np.float32) + 0.5
    t = (cols - camera.cx) / camera.focal - street.slope
    rows = np.arange(camera.height, dtype=np.float32)[:, None] + 0.5
    floor, window_w, spacing = _uniform(rng, 2.8, 3.6), _uniform(rng, 0.8, 1.5), _uniform(rng, 2.2, 3.5)
    for side, line in enumerate(street.facades):
        with np.errstate(divide="ignore"):
            Z = np.where((t < 0) if side == 0 else (t > 0), line / t, np.inf)
        Z = np.where(Z < 0.5, 0.5, Z)
        segments = _facade_segments(rng)
        starts = np.array([s[0] for s in segments])
        index = np.clip(np.searchsorted(starts, Z, side="right") - 1, 0, len(segments) - 1)
        valid = np.isfinite(Z) & (Z < 260) & (Z >= starts[0])
        heights = np.array([s[3] for s in segments])[index]
        kinds = np.array([s[2] for s in segments])[index]
        valid &= kinds != "gap"
        Zc = np.where(valid, Z, 1.0)[None, :]
        heights = np.where(kinds == "hedge", heights * (1.0 + 0.1 * np.sin(Zc[0] * 0.7 + side)), heights)
        top = camera.horizon - camera.focal * (heights[None, :] - camera.elevation) / Zc
        bottom = camera.horizon + camera.focal * camera.elevation / Zc
        cover = valid[None, :] & (rows >= top) & (rows < bottom)
        if not cover.any():
            continue
        ys, xs = np.nonzero(cover)
        Zp = Zc[0, xs]
        h = camera.elevation - (ys + 0.5 - camera.horizon) * Zp / camera.focal
        footprint = Zp / camera.focal
        along = Zp * np.sqrt(1 + street.slope**2)
        building = kinds[xs] == "building"
        colours = np.stack([segment[4] for segment in segments])[index[xs[building]]]
        rgb = np.empty((xs.size, 3), dtype=np.float32)
        scaled = along[building] * 100, h[building] * 100, footprint[building] * 100
        rgb[building] = colours * brick().sample(*scaled, contrast=0.3)[:, None]
        hedge = ~building
        leaves = grass().sample(along[hedge] * 80, h[hedge] * 80, footprint[hedge] * 80, contrast=0.7)
        rgb[hedge] = np.array([60, 95, 45], dtype=np.float32) * leaves[:, None]
        window = building & (h > 1.0) & (np.mod(h, floor) > 0.9) & (np.mod(h, floor) < 2.3) & (np.mod(along, spacing) < window_w)
        rgb[window] = np.array([45, 55, 70], dtype=np.float32) + 60 * np.clip((h[window] % floor) / floor, 0, 1)[:, None]
        canvas.image[ys, xs] = rgb
        canvas.semantic[ys, xs] = np.where(building, BUILDING, VEGETATION)
        canvas.depth[ys, xs] = Zp


# --------------------------------------------------------------------------- sprites


def _poly(points: Sequence[tuple[float, float]], w: int, h: int) -> np.ndarray:
    """Normalised points -> cv2 sub-pixel polygon (shift 4)."""
    return np.array([[x * w * 16, y * h * 16] for x, y in points], dtype=np.int32)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _draw(shapes: Sequence[tuple[list, int, np.ndarray]], w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill normalised polygons ``(points, class, colour)`` in order; later ones on top."""
    labels = np.full((h, w), TRANSPARENT, dtype=np.uint8)
    rgb = np.zeros((h, w, 3), dtype=np.float32)
    for points, label, colour in shapes:
        poly = [_poly(points, w, h)]
        cv2.fillPoly(labels, poly, int(label), lineType=cv2.LINE_8, shift=4)
        cv2.fillPoly(rgb, poly, [float(c) for c in colour], lineType=cv2.LINE_8, shift=4)
    return rgb, labels


def _grain(rng: np.random.Generator, h: int, w: int, contrast: float) -> np.ndarray:
    return gravel().patch(h, w, rng.integers(0, 512, size=2), 2, contrast)[..., None]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> list[tuple[float, float]]:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


CAR_PAINTS = ((235, 235, 235), (25, 25, 28), (160, 162, 168), (95, 98, 105), (150, 25, 25), (30, 55, 120), (40, 75, 50), (200, 185, 150))


def _car(rng: np.random.Generator, w: int, h: int, facing: bool) -> tuple[np.ndarray, np.ndarray]:
    paint = np.array(CAR_PAINTS[int(rng.integers(len(CAR_PAINTS)))], dtype=np.float32)
    glass = np.array([35, 42, 55], dtype=np.float32)
    lights = np.array([235, 235, 210] if facing else [185, 25, 25], dtype=np.float32)
    tyre = np.array([22, 22, 24], dtype=np.float32)
    shapes = [
        ([(0.14, 0.02), (0.86, 0.02), (0.96, 0.42), (0.04, 0.42)], CAR, paint),
        ([(0.03, 0.40), (0.97, 0.40), (1.0, 0.5), (1.0, 0.86), (0.0, 0.86), (0.0, 0.5)], CAR, paint),
        ([(0.2, 0.07), (0.8, 0.07), (0.88, 0.37), (0.12, 0.37)], CAR, glass),
        (_rect(0.04, 0.8, 0.22, 1.0), CAR, tyre),
        (_rect(0.78, 0.8, 0.96, 1.0), CAR, tyre),
        (_rect(0.0, 0.76, 1.0, 0.86), CAR, paint * 0.55),
        (_rect(0.03, 0.5, 0.17, 0.6), CAR, lights),
        (_rect(0.83, 0.5, 0.97, 0.6), CAR, lights),
        (_rect(0.38, 0.62, 0.62, 0.72), CAR, np.array([215, 215, 205], dtype=np.float32)),
    ]
    rgb, labels = _draw(shapes, w, h)
    shading = np.linspace(1.1, 0.8, h, dtype=np.float32)[:, None, None]
    return rgb * shading * _grain(rng, h, w, 0.12), labels


def _person(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    skin = np.array((225, 185, 150) if rng.random() < 0.5 else (150, 100, 70), dtype=np.float32)
    shirt = rng.uniform(20, 230, size=3).astype(np.float32)
    trousers = rng.uniform(20, 120, size=3).astype(np.float32)
    hair = np.array([40, 30, 20], dtype=np.float32) * _uniform(rng, 0.6, 2.5)
    stride = _uniform(rng, 0.0, 0.12)
    shapes = [
        ([(0.22 - stride, 0.5), (0.48, 0.5), (0.46 - stride, 0.97), (0.26 - stride, 0.97)], PERSON, trousers),
        ([(0.52, 0.5), (0.78 + stride, 0.5), (0.74 + stride, 0.97), (0.54 + stride, 0.97)], PERSON, trousers),
        ([(0.0, 0.19), (0.16, 0.17), (0.18, 0.47), (0.04, 0.49)], PERSON, shirt * 0.9),
        ([(1.0, 0.19), (0.84, 0.17), (0.82, 0.47), (0.96, 0.49)], PERSON, shirt * 0.9),
        ([(0.12, 0.16), (0.88, 0.16), (0.8, 0.54), (0.2, 0.54)], PERSON, shirt),
        (_ellipse(0.5, 0.08, 0.2, 0.07), PERSON, skin),
        (_ellipse(0.5, 0.045, 0.2, 0.04), PERSON, hair),
        (_rect(0.2 - stride, 0.95, 0.48, 1.0), PERSON, np.float32([25, 25, 25])),
        (_rect(0.52, 0.95, 0.8 + stride, 1.0), PERSON, np.float32([25, 25, 25])),
    ]
    rgb, labels = _draw(shapes, w, h)
    return rgb * _grain(rng, h, w, 0.1), labels


def _pole(rng: np.random.Generator, w: int, h: int, pole_share: float, sign: str | None, sign_rows: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    metal = np.array([120, 122, 125], dtype=np.float32) * _uniform(rng, 0.7, 1.2)
    half = pole_share / 2
    shapes: list[tuple[list, int, np.ndarray]] = [(_rect(0.5 - half, 0.0, 0.5 + half, 1.0), POLE, metal)]
    top, bottom = sign_rows
    mid = (top + bottom) / 2
    if sign == "circle":
        shapes += [
            (_ellipse(0.5, mid, 0.5, (bottom - top) / 2), SIGN, np.float32([200, 30, 30])),
            (_ellipse(0.5, mid, 0.36, (bottom - top) * 0.36), SIGN, np.float32([235, 235, 235])),
        ]
    elif sign == "triangle":
        shapes += [
            ([(0.0, top), (1.0, top), (0.5, bottom)], SIGN, np.float32([200, 30, 30])),
            ([(0.2, top + 0.15 * (bottom - top)), (0.8, top + 0.15 * (bottom - top)), (0.5, bottom - 0.2 * (bottom - top))], SIGN, np.float32([240, 240, 240])),
        ]
    elif sign == "rect":
        colour = np.float32([30, 80, 170]) if rng.random() < 0.6 else np.float32([230, 200, 40])
        shapes += [(_rect(0.0, top, 1.0, bottom), SIGN, colour)]
    rgb, labels = _draw(shapes, w, h)
    return rgb * _grain(rng, h, w, 0.1), labels


def _tree(rng: np.random.Generator, w: int, h: int, trunk_share: float) -> tuple[np.ndarray, np.ndarray]:
    bark = np.array([80, 60, 45], dtype=np.float32)
    leaves = np.array([55, 90, 40], dtype=np.float32) * _uniform(rng, 0.75, 1.25)
    crown_bottom = _uniform(rng, 0.55, 0.7)
    shapes: list[tuple[list, int, np.ndarray]] = [(_rect(0.5 - trunk_share / 2, crown_bottom - 0.1, 0.5 + trunk_share / 2, 1.0), VEGETATION, bark)]
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = _uniform(rng, 0.3, 0.7), _uniform(rng, 0.2, crown_bottom - 0.15)
        r = _uniform(rng, 0.2, 0.3)
        shapes.append((_ellipse(cx, cy, r, r * w / h, 20), VEGETATION, leaves * _uniform(rng, 0.85, 1.15)))
    rgb, labels = _draw(shapes, w, h)
    return rgb * grass().patch(h, w, rng.integers(0, 512, size=2), 3, 0.7)[..., None], labels


def _sprite_size(camera: Camera, Z: float, width_m: float, height_m: float) -> tuple[int, int]:
    return max(1, int(round(camera.focal * width_m / Z))), max(2, int(round(camera.focal * height_m / Z)))


def _make_sprite(camera: Camera, X: float, Z: float, width_m: float, rgb: np.ndarray, labels: np.ndarray, elevation: float = 0.0, **kwargs) -> _Sprite:
    return _Sprite(X, Z, width_m, rgb, labels, camera.column(X, Z), camera.row(Z, elevation), **kwargs)


def _lane_centre(street: Street, lane: int) -> float:
    return street.road_left + (lane + 0.5) * street.lane_width


def _things(camera: Camera, street: Street, rng: np.random.Generator) -> list[_Sprite]:
    sprites: list[_Sprite] = []
    # trees and poles along both sides
    for side in (0, 1):
        sign = -1 if side == 0 else 1
        kerb = street.road_left if side == 0 else street.road_right
        outer = kerb + sign * (street.sidewalk[side] + street.terrain[side])
        if rng.random() < 0.65:
            z = _uniform(rng, 10, 20)
            while z < 90:
                X = outer - sign * _uniform(rng, 0.8, 1.8) + street.slope * z
                trunk, crown = _uniform(rng, 1.5, 3.0), _uniform(rng, 1.5, 3.2)
                width_m, height_m = 2 * crown, trunk + 1.8 * crown
                w, h = _sprite_size(camera, z, width_m, height_m)
                rgb, labels = _tree(rng, w, h, 0.3 / width_m)
                sprites.append(_make_sprite(camera, X, z, width_m, rgb, labels))
                z += _uniform(rng, 7, 18)
        if rng.random() < 0.85:
            z = _uniform(rng, 4, 25)
            while z < 120:
                X = kerb + sign * _uniform(rng, 0.4, 0.9) + street.slope * z
                tall = rng.random() < 0.45
                height_m = _uniform(rng, 6, 9) if tall else _uniform(rng, 2.8, 3.6)
                sign_kind = None if tall else ("circle", "triangle", "rect")[int(rng.integers(3))]
                sign_size = _uniform(rng, 0.6, 0.9)
                pole_w = _uniform(rng, 0.12, 0.22)
                width_m = sign_size if sign_kind else pole_w
                w, h = _sprite_size(camera, z, width_m, height_m)
                rows = (0.0, sign_size / height_m)
                rgb, labels = _pole(rng, w, h, pole_w / width_m, sign_kind, rows)
                sprites.append(_make_sprite(camera, X, z, width_m, rgb, labels))
                z += _uniform(rng, 15, 40)
    # cars in the lanes (oncoming in the left half of a road with 3+ lanes) and parked
    occupied: list[tuple[int, float]] = []
    for _ in range(int(rng.integers(1, 6))):
        lane, z = int(rng.integers(street.lanes)), _uniform(rng, 7, 70)
        if any(l == lane and abs(z - oz) < 8 for l, oz in occupied):
            continue
        occupied.append((lane, z))
        facing = street.lanes >= 3 and lane < street.lanes // 2
        X = _lane_centre(street, lane) + _uniform(rng, -0.3, 0.3) + street.slope * z
        sprites.append(_car_sprite(camera, rng, X, z, facing))
    for side in (0, 1):
        if rng.random() < 0.4:
            z = _uniform(rng, 6, 20)
            while z < 60:
                X = (street.road_left + 1.1 if side == 0 else street.road_right - 1.1) + street.slope * z
                sprites.append(_car_sprite(camera, rng, X, z, False))
                z += _uniform(rng, 5.5, 12)
    # pedestrians on the sidewalks, a few crossing
    for _ in range(int(rng.integers(0, 6))):
        z = _uniform(rng, 4, 45)
        if rng.random() < 0.2:
            u = _uniform(rng, street.road_left, street.road_right)
        else:
            side = int(rng.integers(2))
            kerb = street.road_left if side == 0 else street.road_right
            u = kerb + (-1 if side == 0 else 1) * _uniform(rng, 0.4, street.sidewalk[side] - 0.3)
        height_m = _uniform(rng, 1.55, 1.95)
        width_m = height_m * _uniform(rng, 0.28, 0.34)
        w, h = _sprite_size(camera, z, width_m, height_m)
        rgb, labels = _person(rng, w, h)
        sprites.append(_make_sprite(camera, u + street.slope * z, z, width_m, rgb, labels, instance_category=PERSON))
    return sprites


def _car_sprite(camera: Camera, rng: np.random.Generator, X: float, Z: float, facing: bool) -> _Sprite:
    width_m, height_m = _uniform(rng, 1.7, 1.95), _uniform(rng, 1.35, 1.75)
    w, h = _sprite_size(camera, Z, width_m, height_m)
    rgb, labels = _car(rng, w, h, facing)
    return _make_sprite(camera, X, Z, width_m, rgb, labels, instance_category=CAR, shadow=True)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _anomalies(
    camera: Camera, street: Street, rng: np.random.Generator, objects: Sequence[Cutout], count: int, min_area: float, others: list[_Sprite]
) -> list[_Sprite]:
    """Place ``count`` objects on the road (70 %) or sidewalk, at depths that keep them
    at least ``min_area`` pixels, clear of other objects at their depth and at most 40 %
    hidden (by box) behind nearer ones; up to 30 tries each."""
    placed: list[_Sprite] = []
    near_limit = camera.focal * camera.elevation / max(camera.height - camera.horizon, 1.0) * 1.15
    for _ in range(count):
        for _attempt in range(30):
            cutout = objects[int(rng.integers(len(objects)))]
            mask = cutout.negative.mask
            height_m = _uniform(rng, *cutout.source.height_m)
            width_m = height_m * mask.shape[1] / mask.shape[0]
            fill = float(mask.mean())
            z_far = camera.focal * np.sqrt(fill * height_m * width_m / min_area)
            z_near = max(4.0, near_limit)
            z = _uniform(rng, z_near, max(z_near + 0.1, min(40.0, z_far)))
            if rng.random() < 0.7:
                u = _uniform(rng, street.road_left + width_m / 2, street.road_right - width_m / 2)
            else:
                side = int(rng.integers(2))
                kerb = street.road_left if side == 0 else street.road_right
                u = kerb + (-1 if side == 0 else 1) * _uniform(rng, 0.3, street.sidewalk[side])
            X = u + street.slope * z
            w, h = _sprite_size(camera, z, width_m, height_m)
            sprite_image = resize_negative(cutout.negative, h, w)
            labels = np.where(sprite_image.mask, np.uint8(ANOMALY), np.uint8(TRANSPARENT))
            sprite = _make_sprite(
                camera, X, z, width_m, sprite_image.image.astype(np.float32), labels,
                instance_category=ANOMALY, name=cutout.source.name, group=cutout.source.group, shadow=True,
            )  # fmt: skip
            box = sprite.box()
            if box[1] < 0 or box[3] > camera.width or box[2] > camera.height:
                continue
            collides = any(abs(o.Z - z) < 2.0 and abs(o.X - X) < (o.width_m + width_m) / 2 for o in [*others, *placed])
            hidden = sum(_overlap(box, o.box()) for o in [*others, *placed] if o.Z < z)
            if not collides and hidden <= 0.4 * w * h:
                placed.append(sprite)
                break
    return placed


def _shadow(canvas: _Canvas, sprite: _Sprite) -> None:
    """Darken the ground in an ellipse under the object (contact shadow)."""
    h, w = sprite.labels.shape
    rx, ry = max(1, int(w * 0.6)), max(1, int(h * 0.07))
    x, y = int(round(sprite.x)), int(round(sprite.y))
    H, W = canvas.semantic.shape
    t, l, b, r = max(0, y - ry), max(0, x - rx), min(H, y + ry + 1), min(W, x + rx + 1)
    if t >= b or l >= r:
        return
    shadow = np.zeros((b - t, r - l), dtype=np.uint8)
    cv2.ellipse(shadow, (x - l, y - t), (rx, ry), 0, 0, 360, 1, -1)
    window = slice(t, b), slice(l, r)
    on_ground = (shadow == 1) & IS_GROUND[canvas.semantic[window]]
    canvas.image[window][on_ground] *= 0.55


def _paint(canvas: _Canvas, sprite: _Sprite) -> None:
    if sprite.shadow:
        _shadow(canvas, sprite)
    top, left, bottom, right = sprite.box()
    H, W = canvas.semantic.shape
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, H), min(right, W)
    if t >= b or l >= r:
        return
    labels = sprite.labels[t - top : b - top, l - left : r - left]
    covered = labels != TRANSPARENT
    if not covered.any():
        return
    window = slice(t, b), slice(l, r)
    canvas.image[window][covered] = sprite.rgb[t - top : b - top, l - left : r - left][covered]
    canvas.semantic[window][covered] = labels[covered]
    canvas.depth[window][covered] = sprite.Z
    instance = 0
    if sprite.instance_category is not None:
        instance = canvas.new_instance(sprite.instance_category, sprite.name, sprite.group)
    canvas.instances[window][covered] = instance


# --------------------------------------------------------------------------- camera effects


def _ego_hood(canvas: _Canvas, camera: Camera, rng: np.random.Generator) -> None:
    h, w = camera.height, camera.width
    depth = _uniform(rng, 0.06, 0.12) * h
    x = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2)
    edge = h - depth * (1 - 0.5 * x**2)
    rows = np.arange(h, dtype=np.float32)[:, None] + 0.5
    hood = rows >= edge[None, :]
    paint = np.array(CAR_PAINTS[int(rng.integers(len(CAR_PAINTS)))], dtype=np.float32) * 0.5
    gradient = np.clip(1.4 - (rows - edge[None, :]) / depth, 0.6, 1.4)[..., None]
    canvas.image[:] = np.where(hood[..., None], paint * gradient, canvas.image)
    canvas.semantic[hood] = IGNORE_ID
    canvas.instances[hood] = 0
    canvas.depth[hood] = 1.0


def _weather(canvas: _Canvas, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    image = canvas.image
    if rng.random() < 0.2:  # fog: Koschmieder blend towards the fog colour by depth
        visibility = _uniform(rng, 40, 160)
        transmission = np.exp(-canvas.depth / visibility)[..., None]
        image = image * transmission + np.float32(_uniform(rng, 170, 215)) * (1 - transmission)
    gain = _uniform(rng, 0.75, 1.2)
    tint = np.array([1.0 + _uniform(rng, -0.08, 0.08), 1.0, 1.0 + _uniform(rng, -0.08, 0.08)], dtype=np.float32)
    dusk = rng.random() < 0.12
    if dusk:
        gain *= _uniform(rng, 0.35, 0.55)
        tint = tint * np.array([0.9, 0.95, 1.15], dtype=np.float32)
    image = image * (gain * tint)
    if rng.random() < 0.15:  # rain: darker, streaks, soft
        image *= 0.85
        streaks = np.zeros(canvas.semantic.shape, dtype=np.float32)
        length, slant = _uniform(rng, 0.04, 0.1) * camera.height, _uniform(rng, -0.3, 0.3)
        for _ in range(int(camera.width * camera.height / 1500)):
            x, y = rng.uniform(0, camera.width), rng.uniform(0, camera.height)
            cv2.line(streaks, (int(x), int(y)), (int(x + slant * length), int(y + length)), 1.0, 1)
        image = image * (1 - 0.35 * streaks[..., None]) + 200 * 0.35 * streaks[..., None]
        image = cv2.GaussianBlur(image, (0, 0), 0.8)
    if rng.random() < 0.1:  # motion blur
        size = int(rng.integers(3, 8))
        image = cv2.filter2D(image, -1, np.full((1, size), 1.0 / size, dtype=np.float32))
    noise_sigma = _uniform(rng, 1.0, 4.0) * (2.5 if dusk else 1.0)
    image = image + noise_sigma * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- frame


def render_frame(
    rng: np.random.Generator,
    height: int,
    width: int,
    anomaly_objects: Sequence[Cutout] = (),
    anomaly_count: int = 0,
    min_anomaly_area: float = 400.0,
) -> Frame:
    """Render one frame; with ``anomaly_objects``, place ``anomaly_count`` of them, each at
    least ``min_anomaly_area`` pixels before occlusion."""
    camera = _camera(rng, height, width)
    street = _street(rng)
    canvas = _Canvas(
        np.zeros((height, width, 3), dtype=np.float32),
        np.zeros((height, width), dtype=np.uint8),
        np.zeros((height, width), dtype=np.int32),
        np.full((height, width), FAR, dtype=np.float32),
    )
    _sky(canvas, camera, rng)
    _far_band(canvas, camera, rng)
    _ground(canvas, camera, street, rng)
    _facades(canvas, camera, street, rng)
    sprites = _things(camera, street, rng)
    if anomaly_objects and anomaly_count:
        sprites += _anomalies(camera, street, rng, anomaly_objects, anomaly_count, min_anomaly_area, sprites)
    for sprite in sorted(sprites, key=lambda s: -s.Z):
        _paint(canvas, sprite)
    if rng.random() < 0.35:
        _ego_hood(canvas, camera, rng)
    image = _weather(canvas, camera, rng)
    return _finish(image, canvas)


def _finish(image: np.ndarray, canvas: _Canvas) -> Frame:
    """Renumber instances 1..n over those still visible (occluded ones vanish)."""
    visible = np.unique(canvas.instances)
    visible = visible[visible > 0]
    lookup = np.zeros(len(canvas.objects) + 1, dtype=np.int32)
    lookup[visible] = np.arange(1, visible.size + 1, dtype=np.int32)
    objects = [Instance(int(lookup[o.id]), o.category, o.name, o.group) for o in canvas.objects if lookup[o.id] > 0]
    return Frame(image, canvas.semantic, lookup[canvas.instances], objects)
