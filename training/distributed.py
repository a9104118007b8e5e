"""Process-group helpers: the same code runs as one process or under ``torchrun``.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``; without them the
trainer runs as a single process and every helper here is a no-op. Backend: NCCL when
the process has a CUDA device, gloo otherwise (CPU tests use 2 gloo processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that ``torchrun`` describes (or stay single-process)."""
    if not launched_by_torchrun():
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), local_rank())
    if device.type == "cuda":
        # ``--device cuda`` (no index) is this rank's GPU: LOCAL_RANK becomes the current device,
        # which is what an index-less "cuda" means from here on (not GPU 0 on every rank).
        torch.cuda.set_device(device if device.index is not None else torch.device("cuda", info.local_rank))
    if info.world_size > 1 and not dist.is_initialized():
        # Rank 0 validates while the others wait at a barrier: allow long validations.
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    return info


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum over processes (a copy; the input is untouched)."""
    value = value.clone()
    if is_distributed():
        dist.all_reduce(value)
    return value


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
