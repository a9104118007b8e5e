"""What an exported model carries besides its weights: ``ExportInfo``.

One JSON document, stored under the key ``anomask`` in the ONNX file's ``metadata_props``
and in the JSON sidecar of every TensorRT engine, so that any runtime can label its outputs
and check its inputs without the checkpoint (ARCHITECTURE.md: "the node needs nothing else").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from anomask.errors import AnomaskError
from anomask.models.metadata import ModelMetadata

METADATA_KEY = "anomask"
"""Key of the JSON document in ONNX ``metadata_props``."""
FORMAT_VERSION = 1

INPUT_FRAMES = "frames"
"""uint8 ``[B, H, W, 3]`` camera frames at the camera resolution (RGB or BGR, see
``ExportInfo.input_format``)."""
INPUT_THRESHOLD = "threshold"
"""float32 0-d tensor: anomaly score above which a pixel is unknown on ``open_set``."""
REQUIRED_OUTPUTS = ("semantic", "anomaly", "open_set")
"""Outputs every exported graph has; the panoptic intermediates follow them."""
PANOPTIC_OUTPUTS = (
    "mask_id",
    "mask_fg",
    "preferred_mask",
    "background",
    "mask_class",
    "mask_score",
    "mask_keep",
    "mask_area",
    "stuff_entropy",
    "thing_entropy",
)
"""The ``FusedHeads`` intermediates a mask-classification model's graph returns after
``REQUIRED_OUTPUTS`` (``anomask.models.heads.fused.OUTPUT_NAMES``), read by the panoptic and
GOSS CPU parts (``anomask.models.heads.open_panoptic``); per-pixel models have none."""


GPU_INSTALL = "pip install -e '.[gpu]' --extra-index-url https://pypi.nvidia.com on a machine with an NVIDIA GPU"
"""How TensorRT and Torch-TensorRT get installed (the ``gpu`` extra; TensorRT's wheels come
from NVIDIA's index, docs/deployment.md), for the errors that find them missing."""


@dataclass(frozen=True)
class ExportSettings:
    """The choices made at export time (``anomask export`` options)."""

    input_size: tuple[int, int]
    """(H, W) of the camera frames the graph takes."""
    network_size: tuple[int, int]
    """(H, W) the network runs at (the frame is resized to it inside the graph)."""
    output_size: tuple[int, int]
    """(H, W) of every per-pixel output."""
    score: str = "eam"
    refine: bool = False
    input_format: str = "RGB"
    batch: int = 1
    """Static batch size, or the largest batch when ``dynamic_batch``."""
    dynamic_batch: bool = False
    anomaly_dtype: str = "float32"
    """``float32`` or ``float16`` (``--fp16-anomaly``)."""
    opset: int = 18
    flip: bool = False
    """Average the anomaly score with the left-right flipped frame's (``--flip``, Mask2Anomaly's
    official inference); the network and heads run twice."""

    def __post_init__(self) -> None:
        if self.input_format not in ("RGB", "BGR"):
            raise AnomaskError(f"input format must be RGB or BGR, not {self.input_format!r}")
        if self.anomaly_dtype not in ("float32", "float16"):
            raise AnomaskError(f"anomaly dtype must be float32 or float16, not {self.anomaly_dtype!r}")
        if self.batch < 1:
            raise AnomaskError(f"batch must be at least 1, not {self.batch}")
        if self.dynamic_batch and self.batch < 2:
            raise AnomaskError("a dynamic batch needs a maximum of at least 2 (a batch of 1 is static)")
        for name in ("input_size", "network_size", "output_size"):
            size = getattr(self, name)
            if len(size) != 2 or min(size) < 1:
                raise AnomaskError(f"{name} must be two positive integers (H, W), not {size!r}")


@dataclass(frozen=True)
class ExportInfo:
    """Model metadata + export settings + the graph's I/O names: everything a runtime needs."""

    metadata: ModelMetadata
    settings: ExportSettings
    outputs: tuple[str, ...]
    """Output names in graph order; starts with ``REQUIRED_OUTPUTS``."""
    anomask_version: str = ""
    command: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def max_batch(self) -> int:
        return self.settings.batch

    def to_json(self) -> str:
        data = {
            "format": FORMAT_VERSION,
            "metadata": json.loads(self.metadata.to_json()),
            "settings": asdict(self.settings),
            "inputs": [INPUT_FRAMES, INPUT_THRESHOLD],
            "outputs": list(self.outputs),
            "anomask_version": self.anomask_version,
            "command": self.command,
            "extra": self.extra,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> ExportInfo:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnomaskError(f"{source}: anomask metadata is not valid JSON ({error})") from error
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else None
            raise AnomaskError(
                f"{source}: anomask export metadata format {found!r} is not {FORMAT_VERSION}; "
                "re-export the model with this version of anomask"
            )
        try:
            settings_data = dict(data["settings"])
            for key in ("input_size", "network_size", "output_size"):
                settings_data[key] = tuple(settings_data[key])
            known = {f.name for f in fields(ExportSettings)}
            settings = ExportSettings(**{k: v for k, v in settings_data.items() if k in known})
            outputs = tuple(data["outputs"])
            metadata = ModelMetadata.from_json(json.dumps(data["metadata"]), source=source)
        except (KeyError, TypeError) as error:
            raise AnomaskError(f"{source}: anomask export metadata lacks or mangles {error}") from error
        missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise AnomaskError(f"{source}: exported graph lacks the outputs {', '.join(missing)}")
        return cls(
            metadata=metadata,
            settings=settings,
            outputs=outputs,
            anomask_version=data.get("anomask_version", ""),
            command=data.get("command"),
            extra=data.get("extra", {}),
        )
