"""Report files written atomically (``anomask.files.write_bytes_atomic``: a
temporary file in the same folder, then ``os.replace``), so a report is complete or absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anomask.files import write_bytes_atomic


def write_text(path: str | Path, text: str) -> Path:
    write_bytes_atomic(Path(path), text.encode("utf-8"))
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """JSON with NaN written as null (strict JSON readers reject NaN)."""
    return write_text(path, json.dumps(_nan_to_none(data), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    return value
