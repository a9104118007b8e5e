"""TensorRT engine cache next to the ONNX file: naming and the load-or-rebuild decision.

Serialized engines are not portable across GPUs or TensorRT versions, so an engine is named
by everything it depends on::

    <onnx stem>.<gpu>-sm<major><minor>.trt<version>.<precision>[.dla<core>].<onnx sha256[:12]>.engine

and carries a JSON sidecar (``<engine>.json``) that states the same key, the engine's own
SHA-256 and the model's ``ExportInfo`` (so the runtime needs nothing else). The decision
trusts the sidecar, never the file name alone: a renamed or copied engine from another GPU or
TensorRT version, a truncated file or a missing sidecar all mean *rebuild*. This module is the
one place that decision is made: ``anomask export --engine``, ``open_runtime`` and the docker
entrypoint's first-boot build all call it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from anomask.errors import AnomaskError
from anomask.export.export_info import GPU_INSTALL
from anomask.files import write_bytes_atomic

ENGINE_FORMAT = 1
PRECISIONS = ("fp16", "fp32", "int8")


@dataclass(frozen=True)
class BuildTarget:
    """The machine an engine is built for (and only valid on)."""

    gpu_name: str
    compute_capability: tuple[int, int]
    tensorrt_version: str

    @property
    def tensorrt_major(self) -> int:
        return int(self.tensorrt_version.split(".")[0])

    def label(self) -> str:
        major, minor = self.compute_capability
        return f"{slug(self.gpu_name)}-sm{major}{minor}.trt{self.tensorrt_version}"


@dataclass(frozen=True)
class EngineKey:
    target: BuildTarget
    precision: str
    onnx_sha256: str
    dla_core: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AnomaskError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"]["compute_capability"] = list(self.target.compute_capability)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineKey:
        target = dict(data["target"])
        target["compute_capability"] = tuple(target["compute_capability"])
        return cls(
            target=BuildTarget(**target),
            precision=data["precision"],
            onnx_sha256=data["onnx_sha256"],
            dla_core=data.get("dla_core"),
        )


@dataclass(frozen=True)
class CacheDecision:
    action: Literal["load", "build"]
    engine_path: Path
    reason: str


def slug(text: str) -> str:
    """File-name-safe lower-case form of a GPU name: 'NVIDIA GeForce RTX 4090' -> 'nvidia-geforce-rtx-4090'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine_path(onnx_path: str | os.PathLike, key: EngineKey) -> Path:
    onnx_path = Path(onnx_path)
    dla = f".dla{key.dla_core}" if key.dla_core is not None else ""
    name = f"{onnx_path.stem}.{key.target.label()}.{key.precision}{dla}.{key.onnx_sha256[:12]}.engine"
    return onnx_path.with_name(name)


def sidecar_path(engine: str | os.PathLike) -> Path:
    return Path(f"{engine}.json")


def read_sidecar(engine: str | os.PathLike) -> dict[str, Any]:
    """The engine's sidecar; AnomaskError when missing or unreadable."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise AnomaskError(f"{engine}: no sidecar {path.name}; build engines with 'anomask export --engine'")
    try:
        data = json.loads(path.read_text())
        if data.get("engine_format") != ENGINE_FORMAT:
            raise AnomaskError(f"{path}: engine sidecar format {data.get('engine_format')!r} is not {ENGINE_FORMAT}")
        data["key"] = EngineKey.from_dict(data["key"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise AnomaskError(f"{path}: unreadable engine sidecar ({error})") from error
    return data


def key_mismatch(expected: EngineKey, found: EngineKey) -> str | None:
    """Why an engine built for ``found`` cannot serve ``expected`` (None when it can)."""
    checks = (
        ("TensorRT version", expected.target.tensorrt_version, found.target.tensorrt_version),
        ("GPU", expected.target.gpu_name, found.target.gpu_name),
        ("compute capability", expected.target.compute_capability, found.target.compute_capability),
        ("precision", expected.precision, found.precision),
        ("ONNX hash", expected.onnx_sha256[:12], found.onnx_sha256[:12]),
        ("DLA core", expected.dla_core, found.dla_core),
    )
    for what, want, have in checks:
        if want != have:
            return f"built for {what} {have}, need {want}"
    return None


def decide(onnx_path: str | os.PathLike, key: EngineKey, force: bool = False) -> CacheDecision:
    """Load the cached engine for ``key`` or build it, and why."""
    path = engine_path(onnx_path, key)
    if force:
        return CacheDecision("build", path, "rebuild forced")
    if not path.is_file():
        return CacheDecision("build", path, "no cached engine")
    try:
        sidecar = read_sidecar(path)
    except AnomaskError as error:
        return CacheDecision("build", path, f"cached engine unusable: {error}")
    mismatch = key_mismatch(key, sidecar["key"])
    if mismatch:
        return CacheDecision("build", path, f"cached engine {mismatch}")
    if path.stat().st_size != sidecar.get("engine_bytes") or file_sha256(path) != sidecar.get("engine_sha256"):
        return CacheDecision("build", path, "cached engine file is truncated or modified")
    return CacheDecision("load", path, "cached engine matches")


def stale_engines(onnx_path: str | os.PathLike, key: EngineKey) -> list[Path]:
    """Engines of the same model, target and precision built from an older ONNX file."""
    current = engine_path(onnx_path, key)
    prefix = current.name[: -len(f"{key.onnx_sha256[:12]}.engine")]
    return sorted(p for p in current.parent.glob(f"{glob_escape(prefix)}*.engine") if p != current)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def write_engine(path: Path, engine: bytes, key: EngineKey, export_json: str, build: dict[str, Any]) -> None:
    """Write the engine and its sidecar atomically (engine first: a sidecar never describes a
    half-written engine)."""
    write_bytes_atomic(path, engine)
    sidecar = {
        "engine_format": ENGINE_FORMAT,
        "key": key.to_dict(),
        "engine_bytes": len(engine),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
        "export": json.loads(export_json),
        "build": build,
    }
    write_bytes_atomic(sidecar_path(path), json.dumps(sidecar, indent=2, sort_keys=True).encode())


def detect_target(device: int = 0) -> BuildTarget:
    """This machine's GPU and TensorRT (imports tensorrt and torch.cuda: GPU machines only)."""
    import torch

    try:
        import tensorrt as trt
    except ImportError as error:
        raise AnomaskError(f"TensorRT is not installed: {GPU_INSTALL}") from error
    if not torch.cuda.is_available():
        raise AnomaskError("no CUDA device: TensorRT engines are built and run on an NVIDIA GPU")
    return BuildTarget(
        gpu_name=torch.cuda.get_device_name(device),
        compute_capability=tuple(torch.cuda.get_device_capability(device)),
        tensorrt_version=trt.__version__,
    )
