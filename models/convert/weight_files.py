"""Read foreign weight files without running code from them.

- ``.safetensors``: safetensors (no code by design);
- ``.pth`` / ``.pt`` / ``.bin``: ``torch.load(weights_only=True)`` (PyTorch's restricted
  unpickler: tensors and plain containers only);
- ``.pkl`` (detectron2 model zoo: a pickled dict of numpy arrays under ``"model"``): our
  own restricted unpickler that resolves only the handful of globals numpy needs to
  rebuild arrays; any other class or function in the stream is refused by name.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from anomask.errors import AnomaskError

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # numpy 1.x pickles name numpy.core.*; numpy 2 moved it to numpy._core.*
        key = (module.replace("numpy.core.", "numpy._core.", 1) if module.startswith("numpy.core.") else module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")


def _read_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise AnomaskError(f"{path}: not a detectron2 weights pickle ({error})") from error


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AnomaskError(f"{path}: not a weights-only PyTorch file ({first_line})") from error


def read_weight_file(path: str | Path) -> Any:
    """The raw object in a weight file (dict of tensors/arrays, possibly nested)."""
    path = Path(path)
    if not path.is_file():
        raise AnomaskError(f"{path}: weight file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as error:
            raise AnomaskError(f"{path}: not a readable safetensors file ({error})") from error
    if suffix == ".pkl":
        return _read_pickle(path)
    if suffix in (".pth", ".pt", ".bin"):
        return _read_torch(path)
    raise AnomaskError(f"{path}: unknown weight file type {suffix!r}; expected .safetensors, .pth, .pt, .bin or .pkl")


def tensor_state(
    obj: Any, source: str, containers: tuple[str, ...] = ("model", "state_dict")
) -> dict[str, torch.Tensor]:
    """A flat ``{key: tensor}`` from a loaded file: unwraps ``{"model": ...}`` or
    ``{"state_dict": ...}`` and turns numpy arrays into tensors."""
    if not isinstance(obj, Mapping):
        raise AnomaskError(f"{source}: expected a dict of weights, found {type(obj).__name__}")
    for name in containers:
        if isinstance(obj.get(name), Mapping):
            obj = obj[name]
            break
    state = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise AnomaskError(f"{source}: entry {key!r} is an array of Python objects, not numbers")
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise AnomaskError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[str(key)] = value
    return state
