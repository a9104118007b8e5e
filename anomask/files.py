"""Files written atomically: a temporary file in the same folder, then ``os.replace``, so a
reader (or a run that failed half-way) never sees a half-written file."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder (created with the umask's
    permissions, unlike ``mkstemp``'s 0600), then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
