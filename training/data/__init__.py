"""Datasets, negative sources, negative pasting and augmentation (the data area).

Every dataset yields the sample contract of the project (``image``, ``semantic``,
optional ``instances`` / ``anomaly``, ``name``) and has ``classes``. Transforms are
``transform(sample, rng)`` with an explicit ``numpy.random.Generator``;
:class:`TransformedDataset` gives each sample the generator of ``(seed, epoch, index)``.
"""

from anomask.training.data.augment import Augment, AugmentConfig
from anomask.training.data.cityscapes import CityscapesDataset
from anomask.training.data.coco_panoptic import OPEN_SET_SPLITS, CocoPanopticDataset
from anomask.training.data.folder import FolderDataset
from anomask.training.data.negatives import (
    AdeNegatives,
    ArrayNegatives,
    BoxNegatives,
    CocoInstanceNegatives,
    Negative,
    NegativePool,
)
from anomask.training.data.pasting import AnomalyMix, InstancePaste, NoisyNegativeImages, NoisyNegativePaste
from anomask.training.data.sample import Sample, Transform, TransformedDataset, sample_rng
from anomask.training.data.streethazards import StreetHazardsDataset

__all__ = [
    "OPEN_SET_SPLITS",
    "AdeNegatives",
    "AnomalyMix",
    "ArrayNegatives",
    "Augment",
    "AugmentConfig",
    "BoxNegatives",
    "CityscapesDataset",
    "CocoInstanceNegatives",
    "CocoPanopticDataset",
    "FolderDataset",
    "InstancePaste",
    "Negative",
    "NegativePool",
    "NoisyNegativeImages",
    "NoisyNegativePaste",
    "Sample",
    "StreetHazardsDataset",
    "Transform",
    "TransformedDataset",
    "sample_rng",
]
