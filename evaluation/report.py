"""Markdown tables laid out like the papers' tables, from metric results.

One row per method (anomaly score), values in percent with two decimals, ``-`` where a
result is missing, the best value of each column in bold (highest for ``↑``, lowest for
``↓``), as the papers print them:

* ``anomaly_table``: AuPRC / FPR95 (optionally AUROC) per dataset (Mask2Anomaly (Rai et al., 2024), Table 1;
  EAM (Grcić et al., 2023), Tables 1-3);
* ``component_table``: sIoU / PPV / F1* per dataset (Mask2Anomaly (Rai et al., 2024), Table 2);
* ``open_set_table``: AuPRC, FPR95, mIoU, open-IoU per split and overall
  (Mask2Anomaly (Rai et al., 2024), Table 3);
* ``panoptic_table``: PQ/SQ/RQ of known things, known stuff, all known, unknown
  (Mask2Anomaly (Rai et al., 2024), Table 4);
* ``goss_table``: GQ_kn, GQ_uk, GQ (GOSS (Hong et al., 2022), Table 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from anomask.evaluation.metrics.components import ComponentResult
from anomask.evaluation.metrics.goss import GossResult
from anomask.evaluation.metrics.panoptic import PanopticResult
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyResult

UP, DOWN = "↑", "↓"


@dataclass(frozen=True)
class Column:
    title: str
    better: str
    """``UP`` or ``DOWN``."""


def markdown_table(row_title: str, columns: Sequence[Column], rows: Mapping[str, Sequence[float | None]]) -> str:
    """Rows of fractions (0..1) as percent; the best of each column in bold (none where all
    values are equal)."""
    best: list[float | None] = []
    for index, column in enumerate(columns):
        values = [v[index] for v in rows.values() if v[index] is not None and v[index] == v[index]]
        # A column whose values are all equal has no best one.
        best.append((max if column.better == UP else min)(values) if len(set(values)) > 1 else None)
    lines = [
        "| " + " | ".join([row_title] + [f"{c.title} {c.better}" for c in columns]) + " |",
        "| " + " | ".join(["---"] + ["---:"] * len(columns)) + " |",
    ]
    for name, values in rows.items():
        cells = []
        for value, top in zip(values, best):
            if value is None or value != value:
                cells.append("-")
            else:
                text = f"{100 * value:.2f}"
                cells.append(f"**{text}**" if top is not None and value == top else text)
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines) + "\n"


def _datasets(results: Mapping[str, Mapping[str, object]]) -> list[str]:
    return list(dict.fromkeys(dataset for per_method in results.values() for dataset in per_method))


def _cells(result: object | None, fields: Sequence[str]) -> tuple[float | None, ...]:
    return tuple(getattr(result, f) for f in fields) if result is not None else (None,) * len(fields)


def anomaly_table(results: Mapping[str, Mapping[str, PixelAnomalyResult]], auroc: bool = False) -> str:
    """``results[method][dataset]``; columns: AuPRC and FPR95 of each dataset (the papers'
    layout), and AUROC after them when ``auroc``."""
    datasets = _datasets(results)
    metrics = (("AuPRC", UP, "ap"), ("FPR95", DOWN, "fpr95")) + ((("AUROC", UP, "auroc"),) if auroc else ())
    columns = [Column(f"{d} {metric}", better) for d in datasets for metric, better, _ in metrics]
    fields = tuple(name for _, _, name in metrics)
    rows = {
        method: [value for d in datasets for value in _cells(per.get(d), fields)] for method, per in results.items()
    }
    return markdown_table("Method", columns, rows)


def component_table(results: Mapping[str, Mapping[str, ComponentResult]]) -> str:
    """``results[method][dataset]``; columns: sIoU, PPV, F1* of each dataset."""
    datasets = _datasets(results)
    columns = [Column(f"{d} {metric}", UP) for d in datasets for metric in ("sIoU", "PPV", "F1*")]
    rows = {
        method: [value for d in datasets for value in _cells(per.get(d), ("siou", "ppv", "f1_star"))]
        for method, per in results.items()
    }
    return markdown_table("Method", columns, rows)


@dataclass(frozen=True)
class OpenSetRow:
    """One method's open-set semantic numbers: pixel metrics and mIoU on the whole test set,
    open-mIoU per split with the split's image count (the overall open-IoU is the
    image-weighted mean, Mask2Anomaly (Rai et al., 2024), §7.4)."""

    pixel: PixelAnomalyResult
    miou: float
    open_miou: Mapping[str, tuple[float, int]]


def open_set_table(rows: Mapping[str, OpenSetRow]) -> str:
    splits = list(dict.fromkeys(split for row in rows.values() for split in row.open_miou))
    columns = [Column("AuPRC", UP), Column("FPR95", DOWN), Column("mIoU", UP)]
    columns += [Column(f"Open-IoU {split}", UP) for split in splits] + [Column("Open-IoU", UP)]
    values = {}
    for method, row in rows.items():
        per_split = [row.open_miou[s][0] if s in row.open_miou else None for s in splits]
        images = sum(n for _, n in row.open_miou.values())
        overall = sum(v * n for v, n in row.open_miou.values()) / images if images else None
        values[method] = [row.pixel.ap, row.pixel.fpr95, row.miou, *per_split, overall]
    return markdown_table("Method", columns, values)


def panoptic_table(results: Mapping[str, PanopticResult]) -> str:
    groups = (("things", "Th"), ("stuff", "St"), ("known", ""), ("unknown", "unk"))
    columns = [Column(f"{m}{'_' + suffix if suffix else ''}", UP) for _, suffix in groups for m in ("PQ", "SQ", "RQ")]
    rows = {
        method: [getattr(result.groups[group], m) for group, _ in groups for m in ("pq", "sq", "rq")]
        for method, result in results.items()
    }
    return markdown_table("Method", columns, rows)


def goss_table(results: Mapping[str, GossResult]) -> str:
    columns = [Column("GQ_kn", UP), Column("GQ_uk", UP), Column("GQ", UP)]
    rows = {method: [r.gq_known, r.gq_unknown, r.gq] for method, r in results.items()}
    return markdown_table("Method", columns, rows)
