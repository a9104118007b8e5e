"""``report.md`` of ``anomask bench quality``: the tables laid out like the papers' (with the
papers' own numbers beside ours for reference; their datasets are named, ours is the
synthetic test split), the claims with their verdicts, and the seed-to-seed comparison.

Values are in % (AP, FPR95, AUROC, F1*, mIoU, open-IoU, PQ, GQ); "—" where a number does
not exist (a per-pixel term has no components or panoptic output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anomask.bench.quality.claims import Verdict
from anomask.bench.quality.metrics import SUBSETS, Results, pct, value
from anomask.bench.quality.plan import MODELS, Model
from anomask.models.panoptic_methods import PANOPTIC_METHODS

PANOPTIC_MODELS = ("m2f", "m2f-cl", "gma-cl")


def _numeric(cell: str) -> bool:
    return cell in ("", "—") or cell.replace(".", "", 1).replace("-", "", 1).isdigit()


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Markdown table; columns holding only numbers are right-aligned."""
    align = [" ---: " if rows and all(_numeric(row[i]) for row in rows) else " --- " for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def row_scores(model: Model) -> tuple[str, ...]:
    """Scores shown for a model: its evaluated scores, or a per-pixel model's three terms."""
    return ("msm", "op", "op_msm") if model.per_pixel else model.scores


def summary(results: Results) -> str:
    rows = []
    for model in MODELS:
        if model.name not in results:
            continue
        for index, score in enumerate(row_scores(model)):
            primary = index == 0 and not model.per_pixel
            rows.append(
                [f"`{model.name}`" if index == 0 else "", score]
                + [pct(value(results, model.name, score, m)) for m in ("ap", "fpr95", "auroc", "f1_star")]
                + [
                    pct(value(results, model.name, score, "miou")) if index == 0 else "",
                    pct(value(results, model.name, score, "open_miou")),
                    pct(value(results, model.name, "mining", "pq_unk")) if primary else "—",
                ]
            )
    legend = "".join(f"- `{m.name}`: {m.title}\n" for m in MODELS if m.name in results)
    return (
        "### All models (synthetic test split, seen + unseen anomalies)\n\n"
        + table(["model", "score", "AP", "FPR95", "AUROC", "F1*", "mIoU (val)", "open-IoU", "PQ_unk (mining)"], rows)
        + "\nPQ_unk: open-set panoptic with `mining` on the model's first score. "
        + "\n\n"
        + legend
    )


def _pixel_row(results: Results, label: Sequence[str], ref: tuple[str, str], paper: Sequence[str] = ()) -> list[str]:
    cells = list(label)
    for subset in SUBSETS:
        cells += [pct(value(results, *ref, "ap", subset)), pct(value(results, *ref, "fpr95", subset))]
    return cells + list(paper)


def _pixel_header(first: Sequence[str], paper: Sequence[str] = ()) -> list[str]:
    return list(first) + [f"{m} {s}" for s in SUBSETS for m in ("AP", "FPR95")] + list(paper)


def eam_table5(results: Results) -> str:
    rows = [
        (("PerPixel", "Max-softmax"), ("pp", "msm"), ("1.8",)),
        (("M2F-AM", "Max-score"), ("m2f", "am"), ("30.9",)),
        (("M2F-AHM", "Max-score"), ("m2f", "ahm"), ("3.5",)),
        (("M2F-AEM", "Energy"), ("m2f", "aem_energy"), ("51.1",)),
        (("", "Max-score"), ("m2f", "msp"), ("51.2",)),
        (("M2F-EAM", "Energy"), ("m2f", "eam_energy"), ("48.5",)),
        (("", "Max-score"), ("m2f", "eam"), ("52.0",)),
        (("RbA", "Σ tanh"), ("m2f", "rba"), ("—",)),
    ]
    return "### EAM (Grcić et al., 2023), Table 5: anomaly detectors on one closed-set model\n\n" + table(
        _pixel_header(("method", "detector"), ("paper: FS L&F AP",)),
        [_pixel_row(results, label, ref, paper) for label, ref, paper in rows],
    )


def eam_negatives(results: Results) -> str:
    rows = [
        (("w/o negatives",), ("m2f", "eam"), ("52.0", "20.5")),
        (("pasted negatives labelled void",), ("m2f-eam", "eam"), ("81.5", "4.2")),
    ]
    return "### EAM (Grcić et al., 2023), §3.4 and Table 8: M2F-EAM fine-tuned with void negatives\n\n" + table(
        _pixel_header(("negatives",), ("paper: FS L&F AP", "FPR95")),
        [_pixel_row(results, label, ref, paper) for label, ref, paper in rows],
    )


def uno_tables(results: Results) -> str:
    def cells(model: str, scores: Sequence[str | None]) -> list[str]:
        out = []
        for score in scores:
            out += (
                ["—", "—"]
                if score is None
                else [
                    pct(value(results, model, score, "ap", "seen")),
                    pct(value(results, model, score, "ap", "unseen")),
                ]
            )
        return out

    rows = [
        ["M2F K+2 (`m2f-uno`)"] + cells("m2f-uno", ("uno_unc", "uno_no", "uno")),
        ["M2F K+1 (`m2f`)"] + cells("m2f", ("eam", None, None)),
        ["paper K+2 (A = sea, B = chairs)", "59.5", "51.3", "95.4", "76.2", "96.7", "82.3"],
        ["paper K+1", "16.2", "11.9", "—", "—", "—", "—"],
    ]
    table8 = table(
        ["model", "s_Unc AP seen (A)", "unseen (B)", "s_NO AP seen", "unseen", "s_UNO AP seen", "unseen"], rows
    )
    rows5 = [
        [name] + [pct(value(results, "m2f-uno", score, m)) for m in ("ap", "fpr95", "auroc")] + list(paper)
        for name, score, paper in (
            ("S_Unc", "uno_unc", ("74.1", "4.5")),
            ("S_NO", "uno_no", ("69.0", "1.6")),
            ("S_UNO", "uno", ("81.8", "1.3")),
        )
    ]
    table5 = table(["score", "AP", "FPR95", "AUROC", "paper: FS L&F AP", "FPR95"], rows5)
    return (
        "### UNO (Delić et al., 2024), Table 8: UNO components, seen vs unseen anomalies\n\n"
        + table8
        + "\n### UNO (Delić et al., 2024), Table 5: UNO components (all test anomalies)\n\n"
        + table5
    )


def mask2anomaly_table5(results: Results) -> str:
    rows = [
        ("", "", "", ("m2f", "msp"), ("10.60", "89.35")),
        ("✓", "", "✓", ("gma", "msp+refined"), ("35.05", "87.11")),
        ("", "✓", "✓", ("m2f-cl", "msp+refined"), ("57.23", "31.93")),
        ("✓", "✓", "", ("gma-cl", "msp"), ("68.95", "24.07")),
        ("✓", "✓", "✓", ("gma-cl", "msp+refined"), ("69.41", "9.46")),
    ]
    table5a = table(
        ["GMA", "CL", "RM", "model:score", "AuPRC", "FPR95", "AuPRC seen", "unseen", "paper: FS L&F AuPRC", "FPR95"],
        [
            [
                g,
                c,
                r,
                f"`{ref[0]}:{ref[1]}`",
                pct(value(results, *ref, "ap")),
                pct(value(results, *ref, "fpr95")),
                pct(value(results, *ref, "ap", "seen")),
                pct(value(results, *ref, "ap", "unseen")),
                *paper,
            ]
            for g, c, r, ref, paper in rows
        ],
    )
    rows_c = [
        [
            name,
            pct(value(results, model, "msp", "miou")),
            pct(value(results, model, "msp", "ap")),
            pct(value(results, model, "msp", "fpr95")),
            *paper,
        ]
        for name, model, paper in (
            ("MA (`m2f`)", "m2f", ("77.42", "10.60", "89.39")),
            ("GMA (`gma`)", "gma", ("80.45", "32.35", "25.95")),
        )
    ]
    table5c = table(["attention", "mIoU", "AuPRC", "FPR95", "paper: mIoU", "AuPRC", "FPR95"], rows_c)
    return (
        "### Mask2Anomaly (Rai et al., 2024), Table 5(a): components (first row: Mask2Former's MSP)\n\n"
        + table5a
        + "\n### Mask2Anomaly (Rai et al., 2024), Table 5(c): masked vs global masked attention, MSP alone\n\n"
        + table5c
    )


def noisy_negatives_table3(results: Results) -> str:
    rows = [
        ("closed set (`pp`)", "pp", "msm", ("7.8", "92.1", "26.6")),
        ("two-head, noisy negatives (`pp-noisy`)", "pp-noisy", "op", ("36.9", "96.1", "20.0")),
        ("", "pp-noisy", "op_msm", ("45.7", "95.6", "24.0")),
        ("", "pp-noisy", "msm", ("—", "—", "—")),
    ]
    return "### Noisy negatives (Bevandić et al., 2022), Table 3: per-pixel MSM, OP and OP×MSM\n\n" + table(
        ["model", "score", "AP", "AUROC", "FPR95", "mIoU", "paper: FS L&F AP", "AUROC", "FPR95"],
        [
            [
                name,
                score.upper().replace("_", "×"),
                pct(value(results, model, score, "ap")),
                pct(value(results, model, score, "auroc")),
                pct(value(results, model, score, "fpr95")),
                pct(value(results, model, score, "miou")),
                *paper,
            ]
            for name, model, score, paper in rows
        ],
    )


def open_panoptic(results: Results) -> str:
    rows = []
    for name in PANOPTIC_MODELS:
        if name not in results:
            continue
        primary = next(m for m in MODELS if m.name == name).scores[0]
        for method in PANOPTIC_METHODS:
            known = [pct(value(results, name, method, "pq_known"))]
            unknown = [pct(value(results, name, method, m)) for m in ("pq_unk", "sq_unk", "rq_unk")]
            rows.append([f"`{name}` ({primary})" if method == PANOPTIC_METHODS[0] else "", method, *known, *unknown])
    goss = [
        [f"`{m.name}`", m.scores[0]]
        + [pct(value(results, m.name, m.scores[0], k)) for k in ("gq_known", "gq_unknown", "gq")]
        for m in MODELS
        if m.name in results and not m.per_pixel
    ]
    return (
        "### Mask2Anomaly (Rai et al., 2024), Tables 4 and 8: open-set panoptic (unknown = the test anomalies)\n\n"
        + table(["model (score)", "method", "PQ known", "PQ_unk", "SQ_unk", "RQ_unk"], rows)
        + "\nThe paper's Table 8 (COCO 20 %, PQ_unk): mining 14.6, without mining 9.1, without GMA 9.0; its Table 4: "
        "EAM 11.3 (EAM's own Table 4 gives 13.2 for EAM and 11.3 for AEM).\n"
        "\n### GOSS (Hong et al., 2022), eq. 1-2: GOSS quality (GQ = 0.5 GQ_known + 0.5 GQ_unknown)\n\n"
        + table(["model", "score", "GQ_known", "GQ_unknown", "GQ"], goss)
    )


def claims(verdicts: Sequence[Verdict], other: dict[str, str] | None = None) -> str:
    header = ["claim", "source", "paper says", "ours", "verdict", "why not"] + (
        ["other seed"] if other is not None else []
    )
    rows = []
    for verdict in verdicts:
        row = [
            verdict.claim.id,
            verdict.claim.source,
            verdict.claim.text,
            "<br>".join(verdict.details),
            "**reproduced**" if verdict.reproduced else "not reproduced",
            verdict.why,
        ]
        if other is not None:
            row.append(other.get(verdict.claim.id, "—"))
        rows.append(row)
    done = sum(v.reproduced for v in verdicts)
    return (
        f"### Claims: {done} of {len(verdicts)} reproduced\n\n"
        + table(header, rows)
        + "\n✓ holds, ✗ goes against the claim, ≈ chance: both APs below 2x the anomaly prior, ≈ noise: within "
        "the seed-to-seed spread (values in %; FPR95: lower is better).\n"
    )


def seeds(noise: dict[str, Any]) -> str:
    rows = [
        [metric, pct(spread["mean"]), pct(spread["max"]), str(spread["n"])]
        for metric, spread in noise["metrics"].items()
    ]
    return (
        f"### Seed-to-seed noise: this run (seed {noise['seed']}) vs `{noise['other']}` (seed "
        f"{noise['other_seed']})\n\n"
        + table(["metric", "mean |Δ|", "max |Δ|", "values"], rows)
        + f"\n{noise['same_verdicts']} of {noise['claims']} claims get the same verdict in both runs.\n"
    )


def report(
    header: dict[str, Any],
    results: Results,
    verdicts: Sequence[Verdict],
    noise: dict[str, Any] | None = None,
    other_verdicts: dict[str, str] | None = None,
) -> str:
    lines = ["# anomask bench quality", ""] + [f"- {key}: {val}" for key, val in header.items()] + ["", ""]
    parts = [
        summary(results),
        eam_table5(results),
        eam_negatives(results),
        uno_tables(results),
        mask2anomaly_table5(results),
        noisy_negatives_table3(results),
        open_panoptic(results),
        claims(verdicts, other_verdicts),
    ]
    if noise is not None:
        parts.append(seeds(noise))
    return "\n".join(lines) + "\n".join(parts)
