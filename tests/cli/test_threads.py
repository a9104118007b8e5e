"""``set_torch_threads``: the ``--threads`` option of ``anomask eval`` and ``bench quality``."""

import pytest
import torch

from anomask.errors import AnomaskError
from anomask.threads import set_torch_threads


def test_sets_torch_threads_and_none_leaves_them() -> None:
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [0, -2])
def test_fewer_than_one_thread_is_an_error(threads: int) -> None:
    with pytest.raises(AnomaskError, match=f"--threads must be at least 1, got {threads}"):
        set_torch_threads(threads)
