"""Parity of two runtimes on the same frames, per output (``anomask export --check``).

Rules (issue 7): integer outputs (class ids, mask indices, flags) agree on at least 99.9 % of
elements; float outputs (anomaly score, per-mask scores, entropies) differ by at most 1e-3
(absolute, float32 comparison; a float16 output may also differ by one float16 step at its
value, the rounding of the output itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

ID_AGREEMENT = 0.999
FLOAT_ATOL = 1e-3


@dataclass(frozen=True)
class OutputParity:
    name: str
    kind: str
    """``ids`` (integer/bool: share of equal elements) or ``float`` (max abs difference)."""
    value: float
    passed: bool

    def line(self) -> str:
        if self.kind not in ("ids", "float"):
            measure = self.kind
        elif self.kind == "ids":
            measure = f"{100 * self.value:.3f} % equal (need >= {100 * ID_AGREEMENT:.1f} %)"
        else:
            measure = f"max |diff| {self.value:.2e} (need <= {FLOAT_ATOL:.0e})"
        return f"{self.name:<16} {'ok' if self.passed else 'FAIL':<5} {measure}"


def compare_outputs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> list[OutputParity]:
    """Per-output parity of ``candidate`` against ``reference`` (same names and shapes)."""
    results = []
    for name, ref in reference.items():
        got = candidate.get(name)
        if got is None or got.shape != ref.shape:
            found = "missing" if got is None else f"shape {list(got.shape)}"
            results.append(OutputParity(name, f"shape {list(ref.shape)} vs {found}", 0.0, False))
            continue
        if np.issubdtype(ref.dtype, np.floating):
            diff = np.abs(ref.astype(np.float32) - got.astype(np.float32))
            rounding = np.spacing(np.abs(ref)).astype(np.float32) if ref.dtype == np.float16 else 0.0
            worst = float(diff.max()) if diff.size else 0.0
            results.append(OutputParity(name, "float", worst, bool(np.all(diff <= FLOAT_ATOL + rounding))))
        else:
            agreement = float(np.mean(ref == got)) if ref.size else 1.0
            results.append(OutputParity(name, "ids", agreement, agreement >= ID_AGREEMENT))
    return results


def parity_report(results: list[OutputParity]) -> str:
    return "\n".join(result.line() for result in results)
