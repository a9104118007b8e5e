"""Under torchrun, an index-less ``--device cuda`` is each rank's own GPU (LOCAL_RANK). No GPU
here: ``torch.cuda.set_device`` is recorded, not called; the CUDA path has never run."""

import pytest
import torch

from anomask.training import distributed


@pytest.mark.parametrize(("device", "expected"), [("cuda", "cuda:3"), ("cuda:1", "cuda:1")])
def test_cuda_device_follows_local_rank(monkeypatch, device, expected):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: no process group to join
    monkeypatch.setenv("LOCAL_RANK", "3")
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(str(d)))
    info = distributed.init_distributed(torch.device(device))
    assert chosen == [expected] and info.local_rank == 3


def test_single_process_and_cpu_select_no_device(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(d))
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.init_distributed(torch.device("cuda")) == distributed.DistInfo()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    distributed.init_distributed(torch.device("cpu"))
    assert chosen == []
