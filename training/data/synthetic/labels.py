"""Classes of the synthetic default and the special values a rendered frame uses."""

from __future__ import annotations

import numpy as np

from anomask.models.classes import ClassList
from anomask.models.metadata import UNKNOWN_ID, ClassInfo

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
IS_GROUND = np.isin(np.arange(256), (ROAD, SIDEWALK, TERRAIN))
FAR = 1e4
"""Depth of the sky (metres)."""
