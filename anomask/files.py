"""Output files and folders: the writable-folder check every command runs before any work,
and the one way anything is written atomically.

Atomic writing: the content goes to a temporary file (or folder) beside the target, is
flushed to disk (``fsync``) and then renamed over the target (``os.replace``), so a reader,
or a run that failed half-way, sees the old content or the new one, never a half-written
file. What is written gets the permissions the umask allows (0644 files and 0755 folders
under umask 022), not ``mkstemp``/``mkdtemp``'s owner-only 0600/0700, so a teammate or a
container's non-root user can read it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from anomask.errors import AnomaskError


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. inside a folder this user may not search: not reachable, as if absent
        return False


def require_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse, with a one-line :class:`AnomaskError` naming the folder, a folder that cannot be
    written: a path through a regular file, or a folder (or its nearest existing parent, where
    it does not exist yet) without write permission or on a read-only file system. Commands call
    it before any work; it creates nothing. Returns ``path``."""
    path = Path(path)
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise AnomaskError(f"{what} {path} is a file, not a folder")
        raise AnomaskError(f"{what} {path} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (its parent {existing} is not writable)"
        raise AnomaskError(f"{what} {path} is not writable{where}")
    return path


def require_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """:func:`require_writable_dir` for a file to write: its folder must be writable and
    ``path`` must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise AnomaskError(f"{what} {path} is a directory, expected a file")
    require_writable_dir(path.parent, f"the folder of {what}")
    return path


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a file; else a one-line :class:`AnomaskError`: "is a directory,
    expected a ..." (a folder named like a file, e.g. ``x.safetensors/``) or "... not found"."""
    path = Path(path)
    if path.is_dir():
        raise AnomaskError(f"{path}: is a directory, expected a {what}")
    if not path.is_file():
        raise AnomaskError(f"{path}: {what} not found")
    return path


def _temporary_beside(path: Path) -> Path:
    """A hidden name beside ``path``, never taken for an output: ``.NAME.tmp.PID.RANDOM`` plus
    the suffix of ``path`` (writers such as ``torch.export.save`` go by the suffix)."""
    return path.with_name(f".{path.name}.tmp.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}")


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (a set-and-restore
    would briefly change it for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (an empty file) for the block to write; when the
    block finishes, the file gets the permissions the umask allows, is flushed to disk and is
    renamed to ``path``. When the block raises, the temporary file is removed and ``path``
    is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_beside(path)
    open(temporary, "xb").close()
    try:
        yield temporary
        # Some writers (safetensors) replace the file with an owner-only one of their own.
        os.chmod(temporary, 0o666 & ~_umask())
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` (created with the umask's permissions) for the
    block to fill; when the block finishes, its files are flushed to disk and the folder
    replaces ``path``. A folder rename is atomic; an existing ``path`` is first renamed aside
    under a hidden name, so at any moment the old or the new folder is complete. When the
    block raises, the temporary folder is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_beside(path)
    temporary.mkdir()
    try:
        yield temporary
        for file in temporary.rglob("*"):
            if file.is_file():
                _fsync(file)
        if path.exists():
            aside = _temporary_beside(path)
            os.rename(path, aside)
            os.rename(temporary, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(temporary, path)
        _fsync(path.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
