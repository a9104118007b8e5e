"""Objects of a synthetic frame as screen-space sprites: trees, poles with traffic signs,
cars, pedestrians and anomaly objects, each drawn at its projected size from normalised
polygons and painted far to near (painter's algorithm gives the occlusions), with a
contact shadow under cars and anomalies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from anomask.training.data.pasting import resize_negative
from anomask.training.data.synthetic.labels import ANOMALY, CAR, IS_GROUND, PERSON, POLE, SIGN, TRANSPARENT, VEGETATION
from anomask.training.data.synthetic.objects import Cutout
from anomask.training.data.synthetic.textures import grass, gravel
from anomask.training.data.synthetic.world import Camera, Canvas, Street, uniform


@dataclass
class Sprite:
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


CAR_PAINTS = (
    (235, 235, 235), (25, 25, 28), (160, 162, 168), (95, 98, 105),
    (150, 25, 25), (30, 55, 120), (40, 75, 50), (200, 185, 150),
)  # fmt: skip


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
    hair = np.array([40, 30, 20], dtype=np.float32) * uniform(rng, 0.6, 2.5)
    stride = uniform(rng, 0.0, 0.12)
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


def _pole(
    rng: np.random.Generator, w: int, h: int, pole_share: float, sign: str | None, sign_rows: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    metal = np.array([120, 122, 125], dtype=np.float32) * uniform(rng, 0.7, 1.2)
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
            (
                [
                    (0.2, top + 0.15 * (bottom - top)),
                    (0.8, top + 0.15 * (bottom - top)),
                    (0.5, bottom - 0.2 * (bottom - top)),
                ],
                SIGN,
                np.float32([240, 240, 240]),
            ),
        ]
    elif sign == "rect":
        colour = np.float32([30, 80, 170]) if rng.random() < 0.6 else np.float32([230, 200, 40])
        shapes += [(_rect(0.0, top, 1.0, bottom), SIGN, colour)]
    rgb, labels = _draw(shapes, w, h)
    return rgb * _grain(rng, h, w, 0.1), labels


def _tree(rng: np.random.Generator, w: int, h: int, trunk_share: float) -> tuple[np.ndarray, np.ndarray]:
    bark = np.array([80, 60, 45], dtype=np.float32)
    leaves = np.array([55, 90, 40], dtype=np.float32) * uniform(rng, 0.75, 1.25)
    crown_bottom = uniform(rng, 0.55, 0.7)
    trunk = _rect(0.5 - trunk_share / 2, crown_bottom - 0.1, 0.5 + trunk_share / 2, 1.0)
    shapes: list[tuple[list, int, np.ndarray]] = [(trunk, VEGETATION, bark)]
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = uniform(rng, 0.3, 0.7), uniform(rng, 0.2, crown_bottom - 0.15)
        r = uniform(rng, 0.2, 0.3)
        shapes.append((_ellipse(cx, cy, r, r * w / h, 20), VEGETATION, leaves * uniform(rng, 0.85, 1.15)))
    rgb, labels = _draw(shapes, w, h)
    return rgb * grass().patch(h, w, rng.integers(0, 512, size=2), 3, 0.7)[..., None], labels


def _sprite_size(camera: Camera, Z: float, width_m: float, height_m: float) -> tuple[int, int]:
    return max(1, int(round(camera.focal * width_m / Z))), max(2, int(round(camera.focal * height_m / Z)))


def _make_sprite(
    camera: Camera, X: float, Z: float, width_m: float, rgb: np.ndarray, labels: np.ndarray, **kwargs
) -> Sprite:
    return Sprite(X, Z, width_m, rgb, labels, camera.column(X, Z), camera.row(Z), **kwargs)


def _lane_centre(street: Street, lane: int) -> float:
    return street.road_left + (lane + 0.5) * street.lane_width


def street_objects(camera: Camera, street: Street, rng: np.random.Generator) -> list[Sprite]:
    sprites: list[Sprite] = []
    # trees and poles along both sides
    for side in (0, 1):
        sign = -1 if side == 0 else 1
        kerb = street.road_left if side == 0 else street.road_right
        outer = kerb + sign * (street.sidewalk[side] + street.terrain[side])
        if rng.random() < 0.65:
            z = uniform(rng, 10, 20)
            while z < 90:
                X = outer - sign * uniform(rng, 0.8, 1.8) + street.slope * z
                trunk, crown = uniform(rng, 1.5, 3.0), uniform(rng, 1.5, 3.2)
                width_m, height_m = 2 * crown, trunk + 1.8 * crown
                w, h = _sprite_size(camera, z, width_m, height_m)
                rgb, labels = _tree(rng, w, h, 0.3 / width_m)
                sprites.append(_make_sprite(camera, X, z, width_m, rgb, labels))
                z += uniform(rng, 7, 18)
        if rng.random() < 0.85:
            z = uniform(rng, 4, 25)
            while z < 120:
                X = kerb + sign * uniform(rng, 0.4, 0.9) + street.slope * z
                tall = rng.random() < 0.45
                height_m = uniform(rng, 6, 9) if tall else uniform(rng, 2.8, 3.6)
                sign_kind = None if tall else ("circle", "triangle", "rect")[int(rng.integers(3))]
                sign_size = uniform(rng, 0.6, 0.9)
                pole_w = uniform(rng, 0.12, 0.22)
                width_m = sign_size if sign_kind else pole_w
                w, h = _sprite_size(camera, z, width_m, height_m)
                rows = (0.0, sign_size / height_m)
                rgb, labels = _pole(rng, w, h, pole_w / width_m, sign_kind, rows)
                sprites.append(_make_sprite(camera, X, z, width_m, rgb, labels))
                z += uniform(rng, 15, 40)
    # cars in the lanes (oncoming in the left half of a road with 3+ lanes) and parked
    occupied: list[tuple[int, float]] = []

    def free(lane: int, z: float) -> bool:
        return all(other != lane or abs(z - other_z) >= 8 for other, other_z in occupied)

    for _ in range(int(rng.integers(1, 6))):
        lane, z = int(rng.integers(street.lanes)), uniform(rng, 7, 70)
        if free(lane, z):
            occupied.append((lane, z))
            facing = street.lanes >= 3 and lane < street.lanes // 2
            X = _lane_centre(street, lane) + uniform(rng, -0.3, 0.3) + street.slope * z
            sprites.append(_car_sprite(camera, rng, X, z, facing))
    for side, lane in ((0, 0), (1, street.lanes - 1)):
        if rng.random() < 0.4:
            z = uniform(rng, 6, 20)
            while z < 60:
                if free(lane, z):
                    X = (street.road_left + 1.1 if side == 0 else street.road_right - 1.1) + street.slope * z
                    sprites.append(_car_sprite(camera, rng, X, z, False))
                z += uniform(rng, 5.5, 12)
    # pedestrians on the sidewalks, a few crossing
    for _ in range(int(rng.integers(0, 6))):
        z = uniform(rng, 4, 45)
        if rng.random() < 0.2:
            u = uniform(rng, street.road_left, street.road_right)
        else:
            side = int(rng.integers(2))
            kerb = street.road_left if side == 0 else street.road_right
            u = kerb + (-1 if side == 0 else 1) * uniform(rng, 0.4, street.sidewalk[side] - 0.3)
        height_m = uniform(rng, 1.55, 1.95)
        width_m = height_m * uniform(rng, 0.28, 0.34)
        w, h = _sprite_size(camera, z, width_m, height_m)
        rgb, labels = _person(rng, w, h)
        sprites.append(_make_sprite(camera, u + street.slope * z, z, width_m, rgb, labels, instance_category=PERSON))
    return sprites


def _car_sprite(camera: Camera, rng: np.random.Generator, X: float, Z: float, facing: bool) -> Sprite:
    width_m, height_m = uniform(rng, 1.7, 1.95), uniform(rng, 1.35, 1.75)
    w, h = _sprite_size(camera, Z, width_m, height_m)
    rgb, labels = _car(rng, w, h, facing)
    return _make_sprite(camera, X, Z, width_m, rgb, labels, instance_category=CAR, shadow=True)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def place_anomalies(
    camera: Camera,
    street: Street,
    rng: np.random.Generator,
    objects: Sequence[Cutout],
    count: int,
    min_area: float,
    others: list[Sprite],
) -> list[Sprite]:
    """Place ``count`` objects on the road (70 %) or sidewalk, at depths that keep them
    at least ``min_area`` pixels, clear of other objects at their depth and at most 40 %
    hidden (by box) behind nearer ones; up to 30 tries each."""
    placed: list[Sprite] = []
    near_limit = camera.focal * camera.elevation / max(camera.height - camera.horizon, 1.0) * 1.15
    for _ in range(count):
        for _attempt in range(30):
            cutout = objects[int(rng.integers(len(objects)))]
            mask = cutout.negative.mask
            height_m = uniform(rng, *cutout.source.height_m)
            width_m = height_m * mask.shape[1] / mask.shape[0]
            fill = float(mask.mean())
            z_far = camera.focal * np.sqrt(fill * height_m * width_m / min_area)
            z_near = max(4.0, near_limit)
            z = uniform(rng, z_near, max(z_near + 0.1, min(40.0, z_far)))
            if rng.random() < 0.7:
                u = uniform(rng, street.road_left + width_m / 2, street.road_right - width_m / 2)
            else:
                side = int(rng.integers(2))
                kerb = street.road_left if side == 0 else street.road_right
                u = kerb + (-1 if side == 0 else 1) * uniform(rng, 0.3, street.sidewalk[side])
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


def _shadow(canvas: Canvas, sprite: Sprite) -> None:
    """Darken the ground in an ellipse under the object (contact shadow)."""
    h, w = sprite.labels.shape
    rx, ry = max(1, int(w * 0.6)), max(1, int(h * 0.07))
    x, y = int(round(sprite.x)), int(round(sprite.y))
    H, W = canvas.semantic.shape
    t, le, b, r = max(0, y - ry), max(0, x - rx), min(H, y + ry + 1), min(W, x + rx + 1)
    if t >= b or le >= r:
        return
    shadow = np.zeros((b - t, r - le), dtype=np.uint8)
    cv2.ellipse(shadow, (x - le, y - t), (rx, ry), 0, 0, 360, 1, -1)
    window = slice(t, b), slice(le, r)
    on_ground = (shadow == 1) & IS_GROUND[canvas.semantic[window]]
    canvas.image[window][on_ground] *= 0.55


def paint_sprite(canvas: Canvas, sprite: Sprite) -> None:
    if sprite.shadow:
        _shadow(canvas, sprite)
    top, left, bottom, right = sprite.box()
    H, W = canvas.semantic.shape
    t, le, b, r = max(top, 0), max(left, 0), min(bottom, H), min(right, W)
    if t >= b or le >= r:
        return
    labels = sprite.labels[t - top : b - top, le - left : r - left]
    covered = labels != TRANSPARENT
    if not covered.any():
        return
    window = slice(t, b), slice(le, r)
    canvas.image[window][covered] = sprite.rgb[t - top : b - top, le - left : r - left][covered]
    canvas.semantic[window][covered] = labels[covered]
    canvas.depth[window][covered] = sprite.Z
    instance = 0
    if sprite.instance_category is not None:
        instance = canvas.new_instance(sprite.instance_category, sprite.name, sprite.group)
    canvas.instances[window][covered] = instance
