"""``--threads N`` of the commands that run torch on the CPU (``eval``, ``bench quality``)."""

from __future__ import annotations

from anomask.errors import AnomaskError


def set_torch_threads(threads: int | None) -> None:
    """Sets torch's CPU threads; None leaves torch's default (one per core). On a shared,
    busy machine 1 is often the fastest choice (docs/demo.md)."""
    if threads is None:
        return
    if threads < 1:
        raise AnomaskError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
