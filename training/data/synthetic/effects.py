"""Camera effects of a synthetic frame: an optional ego-vehicle hood (void) and the
lighting and weather pass (fog by depth, gain and colour temperature, dusk, rain,
motion blur, sensor noise)."""

from __future__ import annotations

import cv2
import numpy as np

from anomask.models.metadata import IGNORE_ID
from anomask.training.data.synthetic.sprites import CAR_PAINTS
from anomask.training.data.synthetic.world import Camera, Canvas, uniform


def paint_ego_hood(canvas: Canvas, camera: Camera, rng: np.random.Generator) -> None:
    h, w = camera.height, camera.width
    depth = uniform(rng, 0.06, 0.12) * h
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


def apply_weather(canvas: Canvas, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    image = canvas.image
    if rng.random() < 0.2:  # fog: Koschmieder blend towards the fog colour by depth
        visibility = uniform(rng, 40, 160)
        transmission = np.exp(-canvas.depth / visibility)[..., None]
        image = image * transmission + np.float32(uniform(rng, 170, 215)) * (1 - transmission)
    gain = uniform(rng, 0.75, 1.2)
    tint = np.array([1.0 + uniform(rng, -0.08, 0.08), 1.0, 1.0 + uniform(rng, -0.08, 0.08)], dtype=np.float32)
    dusk = rng.random() < 0.12
    if dusk:
        gain *= uniform(rng, 0.35, 0.55)
        tint = tint * np.array([0.9, 0.95, 1.15], dtype=np.float32)
    image = image * (gain * tint)
    if rng.random() < 0.15:  # rain: darker, streaks, soft
        image *= 0.85
        streaks = np.zeros(canvas.semantic.shape, dtype=np.float32)
        length, slant = uniform(rng, 0.04, 0.1) * camera.height, uniform(rng, -0.3, 0.3)
        for _ in range(int(camera.width * camera.height / 1500)):
            x, y = rng.uniform(0, camera.width), rng.uniform(0, camera.height)
            cv2.line(streaks, (int(x), int(y)), (int(x + slant * length), int(y + length)), 1.0, 1)
        image = image * (1 - 0.35 * streaks[..., None]) + 200 * 0.35 * streaks[..., None]
        image = cv2.GaussianBlur(image, (0, 0), 0.8)
    if rng.random() < 0.1:  # motion blur
        size = int(rng.integers(3, 8))
        image = cv2.filter2D(image, -1, np.full((1, size), 1.0 / size, dtype=np.float32))
    noise_sigma = uniform(rng, 1.0, 4.0) * (2.5 if dusk else 1.0)
    image = image + noise_sigma * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
