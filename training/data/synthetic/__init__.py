"""The embedded synthetic driving default (needs nothing downloaded).

``generate(DIR, SynthConfig(...))`` writes a Cityscapes-format train/val dataset (read it
with :class:`anomask.training.data.CityscapesDataset`, which picks up ``DIR/classes.json``),
an anomaly test split and an anomaly validation split of seen objects (read them with
:class:`SyntheticAnomalyDataset`, ``split="anomaly"`` or ``"anomaly_val"``).
:func:`seen_negatives` is the training negative pool; unseen objects only appear in tests.
:func:`default_root` is where ``dataset: synthetic`` lives (``$ANOMASK_SYNTHETIC`` or the user cache).
"""

from anomask.training.data.synthetic.labels import SYNTH_CLASSES
from anomask.training.data.synthetic.objects import GROUPS, SOURCES, cutouts, seen_negatives
from anomask.training.data.synthetic.reader import SyntheticAnomalyDataset
from anomask.training.data.synthetic.scene import render_frame
from anomask.training.data.synthetic.writer import (
    ANOMALY_TEST,
    ANOMALY_VAL,
    SynthConfig,
    default_root,
    ensure_generated,
    generate,
)

__all__ = [
    "ANOMALY_TEST",
    "ANOMALY_VAL",
    "GROUPS",
    "SOURCES",
    "SYNTH_CLASSES",
    "SynthConfig",
    "SyntheticAnomalyDataset",
    "cutouts",
    "default_root",
    "ensure_generated",
    "generate",
    "render_frame",
    "seen_negatives",
]
