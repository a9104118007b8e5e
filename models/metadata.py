"""Model metadata: what a deployed model needs to label its outputs.

Stored as JSON inside every checkpoint (safetensors header) and every exported ONNX file
(``metadata_props``), so the node needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from anomask.errors import AnomaskError
from anomask.models.config import ModelConfig

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
HALF_RANGE = (127.5, 127.5, 127.5)
"""Mean = std = 0.5 on the 0-1 scale: the TensorFlow EfficientNet-Lite input normalisation."""
BACKBONE_NORMALISATION = {"efficientnet_lite0": (HALF_RANGE, HALF_RANGE)}
"""Input mean and std of backbones whose weights expect other than torchvision's ImageNet ones."""
UNKNOWN_ID = 254
"""Unknown class on published open-set maps (ARCHITECTURE.md contract)."""
IGNORE_ID = 255


def input_normalisation(backbone: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) on the 0-255 scale that ``backbone``'s pretrained weights expect."""
    return BACKBONE_NORMALISATION.get(backbone, (IMAGENET_MEAN, IMAGENET_STD))


@dataclass(frozen=True)
class ClassInfo:
    name: str
    is_thing: bool
    color: tuple[int, int, int]


@dataclass(frozen=True)
class ModelMetadata:
    classes: tuple[ClassInfo, ...]
    architecture: ModelConfig
    mean: tuple[float, float, float] | None = None
    """Per-channel mean on the 0-255 scale, RGB order; by default the one the backbone's
    weights expect (:func:`input_normalisation`)."""
    std: tuple[float, float, float] | None = None
    input_format: str = "RGB"
    score: str = "eam"
    """Anomaly score the deployed model uses (a name from anomask.models heads)."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Calibrated anomaly thresholds, e.g. ``{"eam@tpr95": 0.42}``."""
    refinement_classes: tuple[int, ...] | None = None
    """Classes whose confident masks zero the anomaly score (the refinement of
    Mask2Anomaly (Rai et al., 2024), eq. 15: stuff except road). ``None``: every stuff class
    not named road."""
    recipe: str | None = None
    command: str | None = None
    """The command line that produced this checkpoint."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mean, std = input_normalisation(self.architecture.backbone)
        if self.mean is None:
            object.__setattr__(self, "mean", mean)
        if self.std is None:
            object.__setattr__(self, "std", std)
        if len(self.classes) != self.architecture.num_classes:
            raise AnomaskError(
                f"metadata lists {len(self.classes)} classes but the architecture has "
                f"num_classes={self.architecture.num_classes}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def thing_ids(self) -> list[int]:
        return [i for i, c in enumerate(self.classes) if c.is_thing]

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return [c.color for c in self.classes]

    def refinement_ids(self) -> list[int]:
        if self.refinement_classes is not None:
            return list(self.refinement_classes)
        return [i for i, c in enumerate(self.classes) if not c.is_thing and c.name.lower() != "road"]

    def to_json(self) -> str:
        data = asdict(self)
        data["architecture"] = self.architecture.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "metadata") -> ModelMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnomaskError(f"{source}: metadata is not valid JSON ({error})") from error
        known = {f.name for f in fields(cls)}
        missing = sorted({"classes", "architecture"} - set(data))
        if missing:
            raise AnomaskError(f"{source}: metadata lacks {', '.join(missing)}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnomaskError(f"{source}: unknown metadata fields {', '.join(unknown)}")
        try:
            data["classes"] = tuple(
                ClassInfo(c["name"], bool(c["is_thing"]), tuple(c["color"])) for c in data["classes"]
            )
            data["architecture"] = ModelConfig.from_dict(data["architecture"])
            for key in ("mean", "std"):
                if key in data:
                    data[key] = tuple(data[key])
            if data.get("refinement_classes") is not None:
                data["refinement_classes"] = tuple(data["refinement_classes"])
            return cls(**data)
        except AnomaskError as error:
            raise AnomaskError(f"{source}: {error}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise AnomaskError(f"{source}: malformed metadata ({type(error).__name__}: {error})") from error
