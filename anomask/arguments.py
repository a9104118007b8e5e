"""Checks of numbers on the command line, shared by the subcommands as argparse ``type=``
functions: a bad value (``--iterations -5``, ``--limit 0``, ``--network-size 33 65``) ends
with argparse's one-line usage error and exit status 2 before any work starts."""

from __future__ import annotations

import argparse

NETWORK_STRIDE = 32
"""The network's coarsest feature stride: its input sides must be multiples of it."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from error


def positive_int(text: str) -> int:
    """A whole number >= 1 (iterations, frames, a batch)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def network_side(text: str) -> int:
    """A network input height or width: a positive multiple of :data:`NETWORK_STRIDE`."""
    value = _int(text)
    if value < NETWORK_STRIDE or value % NETWORK_STRIDE:
        raise argparse.ArgumentTypeError(f"{value}: must be a positive multiple of {NETWORK_STRIDE}")
    return value
