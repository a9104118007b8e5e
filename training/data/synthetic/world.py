"""The world of a synthetic frame: camera, street layout and the background painters
(sky, far tree line or skyline, textured ground with lane marks, facades).

Geometry (metres): camera at height ``elevation`` looking along +Z; a straight road
turned by a small yaw, whose lateral coordinate is ``u = X - slope * Z``. A ground pixel
at row y lies at depth ``Z = f * elevation / (y - horizon)``; ground classes come from
``u`` and textures are sampled in world coordinates (perspective-correct, mip-mapped).
Facades are vertical planes at the street's outer edges, solved per column; their
segments are buildings (brick colours, window grid), hedges or gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from anomask.training.data.synthetic.labels import BUILDING, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION
from anomask.training.data.synthetic.textures import brick, grass, gravel


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

    def row(self, Z: float) -> float:
        """Image row of the ground at depth ``Z``."""
        return self.horizon + self.focal * self.elevation / Z


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
class Canvas:
    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    depth: np.ndarray
    objects: list[Instance] = field(default_factory=list)

    def new_instance(self, category: int, name: str = "", group: str = "") -> int:
        instance = Instance(len(self.objects) + 1, category, name, group)
        self.objects.append(instance)
        return instance.id


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def random_camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    focal = width * uniform(rng, 0.95, 1.15)
    return Camera(
        height,
        width,
        focal,
        cx=width * uniform(rng, 0.48, 0.52),
        horizon=height * uniform(rng, 0.36, 0.5),
        elevation=uniform(rng, 1.2, 2.2),
    )


def random_street(rng: np.random.Generator) -> Street:
    lanes = int(rng.integers(2, 5))
    lane_width = uniform(rng, 3.0, 3.6)
    own_lane = int(rng.integers(lanes))
    road_left = -(own_lane + 0.5) * lane_width + uniform(rng, -0.4, 0.4)
    sidewalk = (uniform(rng, 1.5, 4.5), uniform(rng, 1.5, 4.5))
    terrain = tuple(0.0 if rng.random() < 0.5 else uniform(rng, 1.0, 6.0) for _ in range(2))
    return Street(road_left, lanes, lane_width, float(np.tan(np.radians(rng.uniform(-6, 6)))), sidewalk, terrain)


def paint_sky(canvas: Canvas, camera: Camera, rng: np.random.Generator) -> None:
    h, w = camera.height, camera.width
    overcast = rng.random() < 0.3
    zenith = np.array([165, 170, 178] if overcast else [60, 115, 190], dtype=np.float32) * uniform(rng, 0.9, 1.1)
    horizon = np.array([200, 202, 206] if overcast else [185, 205, 228], dtype=np.float32)
    t = np.clip((np.arange(h, dtype=np.float32) / max(camera.horizon, 1.0))[:, None, None], 0, 1)
    canvas.image[:] = zenith * (1 - t) + horizon * t
    noise = cv2.resize(rng.random((4, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    clouds = np.clip((noise - uniform(rng, 0.45, 0.8)) * 3, 0, 1)[..., None]
    canvas.image[:] = canvas.image * (1 - clouds) + np.float32(235) * clouds
    canvas.semantic[:] = SKY


def paint_far_band(canvas: Canvas, camera: Camera, rng: np.random.Generator) -> None:
    """Distant tree line or skyline just above the horizon."""
    w = camera.width
    skyline = rng.random() < 0.5
    if skyline:
        blocks = rng.uniform(0.01, 0.07, size=int(rng.integers(8, 20))) * camera.height
        heights = np.repeat(blocks, int(np.ceil(w / blocks.size)))[:w]
    else:
        heights = cv2.resize(
            rng.uniform(0.01, 0.05, size=(1, 12)).astype(np.float32), (w, 1), interpolation=cv2.INTER_CUBIC
        )[0]
        heights = heights * camera.height
    rows = np.arange(camera.height, dtype=np.float32)[:, None]
    band = (rows >= camera.horizon - heights[None, :]) & (rows < camera.horizon + 1)
    colour = np.array([120, 125, 135] if skyline else [70, 95, 70], dtype=np.float32)
    canvas.image[band] = colour
    canvas.semantic[band] = BUILDING if skyline else VEGETATION
    canvas.depth[band] = 400.0


def paint_ground(canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
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

    asphalt = np.array([95, 95, 100], dtype=np.float32) * uniform(rng, 0.75, 1.15)
    paving = np.array([165, 160, 150], dtype=np.float32) * uniform(rng, 0.85, 1.1)
    turf = np.array([95, 115, 55], dtype=np.float32) * uniform(rng, 0.8, 1.15)
    offset = rng.uniform(0, 512, size=2)
    colour = np.empty((*labels.shape, 3), dtype=np.float32)
    for where, texture, texels, contrast, base in (
        (road, gravel(), 90, 0.3, asphalt),
        (walk, brick(), 60, 0.35, paving),
        (~road & ~walk, grass(), 120, 0.6, turf),
    ):
        shade = texture.sample(
            u[where] * texels + offset[0], Z[where] * texels + offset[1], footprint[where] * texels, contrast
        )
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
        start = uniform(rng, 8, 30)
        marks |= (Z >= start) & (Z < start + 3.0) & (np.mod(u, 1.0) < 0.5)
    marks &= road
    colour[marks] = colour[marks] * 0.25 + np.float32(200) * 0.75
    canvas.image[top:] = colour
    canvas.semantic[top:] = labels
    canvas.depth[top:] = Z


def _facade_segments(rng: np.random.Generator) -> list[tuple[float, float, str, float, np.ndarray]]:
    """(start Z, end Z, kind, height, colour) along one side."""
    segments, z = [], uniform(rng, -5, 3)
    palette = ((150, 85, 65), (190, 172, 140), (140, 140, 142), (205, 203, 195), (105, 98, 92), (170, 120, 90))
    while z < 260:
        length = uniform(rng, 8, 30)
        roll = rng.random()
        kind = "building" if roll < 0.72 else "hedge" if roll < 0.9 else "gap"
        height = uniform(rng, 6, 26) if kind == "building" else uniform(rng, 2.5, 9)
        colour = np.array(palette[int(rng.integers(len(palette)))], dtype=np.float32) * uniform(rng, 0.85, 1.1)
        segments.append((z, z + length, kind, height, colour))
        z += length
    return segments


def paint_facades(canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    cols = np.arange(camera.width, dtype=np.float32) + 0.5
    t = (cols - camera.cx) / camera.focal - street.slope
    rows = np.arange(camera.height, dtype=np.float32)[:, None] + 0.5
    floor, window_w, spacing = uniform(rng, 2.8, 3.6), uniform(rng, 0.8, 1.5), uniform(rng, 2.2, 3.5)
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
        window = (
            building
            & (h > 1.0)
            & (np.mod(h, floor) > 0.9)
            & (np.mod(h, floor) < 2.3)
            & (np.mod(along, spacing) < window_w)
        )
        rgb[window] = (
            np.array([45, 55, 70], dtype=np.float32) + 60 * np.clip((h[window] % floor) / floor, 0, 1)[:, None]
        )
        canvas.image[ys, xs] = rgb
        canvas.semantic[ys, xs] = np.where(building, BUILDING, VEGETATION)
        canvas.depth[ys, xs] = Zp
