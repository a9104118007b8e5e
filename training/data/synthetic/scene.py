"""One synthetic driving frame: a pinhole camera over a flat world, rendered in numpy.

The order: sky, far band, textured ground, facades (:mod:`.world`); trees, poles with
signs, cars, pedestrians and (test split) anomaly objects painted far to near
(:mod:`.sprites`); an optional ego-vehicle hood and the lighting and weather pass
(:mod:`.effects`). Everything random comes from one ``numpy.random.Generator``; the same
generator state gives the same frame, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from anomask.training.data.synthetic.effects import apply_weather, paint_ego_hood
from anomask.training.data.synthetic.labels import FAR
from anomask.training.data.synthetic.objects import Cutout
from anomask.training.data.synthetic.sprites import paint_sprite, place_anomalies, street_objects
from anomask.training.data.synthetic.world import (
    Canvas,
    Instance,
    paint_facades,
    paint_far_band,
    paint_ground,
    paint_sky,
    random_camera,
    random_street,
)


@dataclass
class Frame:
    image: np.ndarray
    """uint8 ``[H, W, 3]`` RGB."""
    semantic: np.ndarray
    """uint8: train ids, 254 on anomalies, 255 on the ego vehicle."""
    instances: np.ndarray
    """int32: 1..n per thing or anomaly instance, 0 elsewhere."""
    objects: list[Instance] = field(default_factory=list)


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
    camera = random_camera(rng, height, width)
    street = random_street(rng)
    canvas = Canvas(
        np.zeros((height, width, 3), dtype=np.float32),
        np.zeros((height, width), dtype=np.uint8),
        np.zeros((height, width), dtype=np.int32),
        np.full((height, width), FAR, dtype=np.float32),
    )
    paint_sky(canvas, camera, rng)
    paint_far_band(canvas, camera, rng)
    paint_ground(canvas, camera, street, rng)
    paint_facades(canvas, camera, street, rng)
    sprites = street_objects(camera, street, rng)
    if anomaly_objects and anomaly_count:
        sprites += place_anomalies(camera, street, rng, anomaly_objects, anomaly_count, min_anomaly_area, sprites)
    for sprite in sorted(sprites, key=lambda s: -s.Z):
        paint_sprite(canvas, sprite)
    if rng.random() < 0.35:
        paint_ego_hood(canvas, camera, rng)
    image = apply_weather(canvas, camera, rng)
    return _finish(image, canvas)


def _finish(image: np.ndarray, canvas: Canvas) -> Frame:
    """Renumber instances 1..n over those still visible (occluded ones vanish)."""
    visible = np.unique(canvas.instances)
    visible = visible[visible > 0]
    lookup = np.zeros(len(canvas.objects) + 1, dtype=np.int32)
    lookup[visible] = np.arange(1, visible.size + 1, dtype=np.int32)
    objects = [Instance(int(lookup[o.id]), o.category, o.name, o.group) for o in canvas.objects if lookup[o.id] > 0]
    return Frame(image, canvas.semantic, lookup[canvas.instances], objects)
