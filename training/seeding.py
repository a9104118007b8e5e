"""Seeds and random-number state: derived seeds, per-purpose generators, and the global
RNG states (torch, numpy, python) a trainer checkpoint saves and restores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def mix_seed(*values: int) -> int:
    """One 63-bit seed from several integers; neighbouring inputs give unrelated seeds
    (``numpy.random.SeedSequence`` hashing)."""
    return int(np.random.SeedSequence([int(v) % 2**63 for v in values]).generate_state(1, np.uint64)[0] % 2**63)


def derived_generator(seed: int, *stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator for one (seed, stream...) tuple, independent of every other."""
    generator = torch.Generator(device=device)
    generator.manual_seed(mix_seed(seed, *stream))
    return generator


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states as tensors/ints/tuples only (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
