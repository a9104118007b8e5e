"""``report.md``, ``metrics.json`` and ``plots/`` of one ``evaluate`` run.

One table per task, laid out like the papers' (``report``): anomaly segmentation (rows:
scores; columns: AuPRC / FPR95 / AUROC per dataset and anomaly group), SMIYC components
(sIoU / PPV / F1*), closed-set mIoU, open-set semantic (AuPRC, FPR95, mIoU, open-IoU per
threshold split and overall), open-set panoptic (rows: methods; PQ/SQ/RQ of known things,
known stuff, known, unknown) and GOSS. Figures: PR + ROC curves of every score per dataset
and group, inlier/outlier histograms per score (EAM (Grcić et al., 2023), Fig. 3), qualitative
panels.
"""

from __future__ import annotations

import re
from pathlib import Path

from anomask.evaluation.evaluate import DatasetResults, EvalResults
from anomask.evaluation.output_files import write_json, write_text
from anomask.evaluation.plots import plot_curves, plot_histograms, plot_panel
from anomask.evaluation.report import (
    UP,
    Column,
    OpenSetRow,
    anomaly_table,
    component_table,
    goss_table,
    markdown_table,
    open_set_table,
    panoptic_table,
)

PLOTS = "plots"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "x"


def _image(title: str, path: Path, out_dir: Path) -> str:
    return f"![{title}]({path.relative_to(out_dir).as_posix()})"


def _by_score(results: list[DatasetResults], field: str) -> dict[str, dict[str, object]]:
    """``{score: {subset: result}}`` across datasets, from ``results[i].<field>[subset][score]``."""
    table: dict[str, dict[str, object]] = {}
    for dataset in results:
        for subset, per_score in getattr(dataset, field).items():
            for score, result in per_score.items():
                table.setdefault(score, {})[subset] = result
    return table


def _anomaly_section(evaluation: EvalResults, out_dir: Path, plots: Path) -> list[str]:
    pixel = _by_score(evaluation.datasets, "pixel")
    if not pixel:
        return []
    lines = [
        "## Anomaly segmentation: pixel level",
        "",
        "AuPRC (= sklearn average precision), FPR at 95 % TPR and AUROC in %, per score; groups (seen / unseen "
        "anomalies) as their own columns.",
        "",
        anomaly_table(pixel, auroc=True),
    ]
    for dataset in evaluation.datasets:
        for subset, curves in dataset.curves.items():
            path = plot_curves(curves, plots / f"curves_{slug(subset)}.png", title=subset)
            lines.append(_image(f"PR and ROC curves, {subset}", path, out_dir))
        if dataset.name in dataset.histograms:
            path = plot_histograms(
                dataset.histograms[dataset.name],
                plots / f"histograms_{slug(dataset.name)}.png",
                title=f"{dataset.name}: inlier and outlier scores",
            )
            lines.append(_image(f"score histograms, {dataset.name}", path, out_dir))
    lines.append("")
    components = _by_score(evaluation.datasets, "components")
    if components:
        lines += [
            "## Anomaly segmentation: component level (SMIYC)",
            "",
            "sIoU, PPV and F1* (mean F1 over τ = 0.25 ... 0.75) in %, the scores thresholded at each dataset's "
            "best pixel-F1 threshold (SMIYC's rule).",
            "",
            component_table(components),
        ]
        for dataset in evaluation.datasets:
            if dataset.component_sizes:
                lines.append(
                    f"- {dataset.name}: predicted components under {dataset.component_sizes[0]} px dropped, "
                    f"ground-truth components under {dataset.component_sizes[1]} px ignored."
                )
        lines.append("")
    return lines


def _semantic_section(evaluation: EvalResults) -> list[str]:
    scored = [d for d in evaluation.datasets if d.semantic is not None]
    if not scored:
        return []
    columns = [Column("mIoU", UP)] + [Column(c.name, UP) for c in evaluation.classes]
    rows = {d.name: [d.semantic.miou, *d.semantic.iou] for d in scored}
    return [
        "## Closed-set semantic segmentation",
        "",
        "IoU in % over the known classes (unknown and void pixels left out).",
        "",
        markdown_table("Dataset", columns, rows),
        "",
    ]


def _open_set_section(evaluation: EvalResults) -> list[str]:
    lines: list[str] = []
    for dataset in evaluation.datasets:
        if not dataset.open_set:
            continue
        rows = {
            score: OpenSetRow(
                pixel=dataset.pixel[dataset.name][score],
                miou=dataset.semantic.miou,
                open_miou={split: (r.open_miou, dataset.splits[split]) for split, r in per.items()},
            )
            for score, per in dataset.open_set.items()
        }
        lines += [
            f"## Open-set semantic segmentation: {dataset.name}",
            "",
            "AuPRC and FPR95 over the whole split, closed-set mIoU, "
            "open-IoU (Mask2Anomaly (Rai et al., 2024), eq. 25-26) per threshold split and their image-weighted mean.",
            "",
            open_set_table(rows),
        ]
        lines += [
            "| Score | " + " | ".join(f"threshold, {split}" for split in dataset.splits) + " |",
            "| --- | " + " | ".join("---:" for _ in dataset.splits) + " |",
        ]
        for score, per in dataset.thresholds.items():
            lines.append(
                f"| {score} | "
                + " | ".join(f"{per[split]:.6g}" if split in per else "—" for split in dataset.splits)
                + " |"
            )
        lines.append("")
    return lines


def _panoptic_section(evaluation: EvalResults) -> list[str]:
    lines: list[str] = []
    primary = evaluation.scores[0]
    for dataset in evaluation.datasets:
        if dataset.panoptic:
            lines += [
                f"## Open-set panoptic segmentation: {dataset.name}",
                "",
                f"PQ / SQ / RQ in % (COCO rules) of known things (Th), known stuff (St), all known classes and the "
                f"unknown class, per method; open-set maps from `{primary}` at the threshold above.",
                "",
                panoptic_table(dataset.panoptic),
                "",
            ]
        if dataset.goss is not None:
            lines += [
                f"## GOSS: {dataset.name}",
                "",
                "GQ in % (GOSS (Hong et al., 2022), eq. 1-2, λ = 0.5).",
                "",
                goss_table({f"GOSS ({primary})": dataset.goss}),
                "",
            ]
    return lines


def _panels_section(evaluation: EvalResults, out_dir: Path, plots: Path) -> list[str]:
    lines: list[str] = []
    for dataset in evaluation.datasets:
        for number, panel in enumerate(dataset.panels):
            path = plot_panel(
                panel.image,
                panel.anomaly,
                panel.score,
                panel.panoptic,
                evaluation.classes,
                plots / f"panel_{slug(dataset.name)}_{number}.png",
                title=f"{dataset.name}: {panel.name}",
            )
            lines.append(_image(f"{dataset.name}: {panel.name}", path, out_dir))
    return ["## Qualitative results", "", *lines, ""] if lines else []


PROTOCOL_SENTENCES = {
    "anomask": "anomask (the fast deployment path: scores at mask resolution, then upsampled; anomask's refinement)",
    "anomask+flip": "anomask, averaged with the left-right flipped frame (exported with --flip)",
    "official": "official (each method's official code: masks upsampled before scoring, Mask2Anomaly's flip "
    "averaging and refinement rules; docs/evaluation.md)",
}


def protocol_sentence(protocol: str) -> str:
    return PROTOCOL_SENTENCES.get(protocol, protocol)


def _header(evaluation: EvalResults) -> list[str]:
    timing = evaluation.timing
    rows = [
        ("model", f"`{evaluation.model}` ({evaluation.backend})"),
        ("classes", f"{len(evaluation.classes)}: {', '.join(c.name for c in evaluation.classes)}"),
        (
            "scores",
            ", ".join(f"`{s}`" for s in evaluation.scores)
            + " (the first feeds open-set panoptic, GOSS and the panels)",
        ),
        ("protocol", protocol_sentence(evaluation.protocol)),
        ("input resolution", evaluation.resolution),
        ("open-set thresholds", evaluation.threshold_source),
        (
            "datasets",
            ", ".join(
                f"{d.name} ({d.images} images: {', '.join(d.tasks) or 'nothing to score'})" for d in evaluation.datasets
            ),
        ),
        (
            "time",
            f"{timing['network_and_heads_ms_per_image']:.1f} ms/image network + heads (CPU time "
            f"{timing['network_and_heads_cpu_ms_per_image']:.1f} ms), {timing['pass1_ms_per_image']:.1f} ms/image "
            f"first pass, "
            f"{timing['pass2_ms_per_image']:.1f} ms/image second pass; {timing['device']}, "
            f"{timing['torch_threads']} torch threads, {timing['cpu_count']} CPUs, "
            f"load average {timing['load_average_1min_at_end']:.1f}",
        ),
    ]
    if evaluation.command:
        rows.append(("command", f"`{evaluation.command}`"))
    return ["# anomask evaluation", "", "| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], ""]


def write_report(evaluation: EvalResults, out_dir: str | Path) -> Path:
    """Write ``report.md``, ``metrics.json`` and the figures; returns the report's path."""
    out_dir = Path(out_dir)
    plots = out_dir / PLOTS
    plots.mkdir(parents=True, exist_ok=True)
    lines = _header(evaluation)
    lines += _anomaly_section(evaluation, out_dir, plots)
    lines += _semantic_section(evaluation)
    lines += _open_set_section(evaluation)
    lines += _panoptic_section(evaluation)
    lines += _panels_section(evaluation, out_dir, plots)
    if evaluation.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in evaluation.notes], ""]
    write_json(out_dir / "metrics.json", evaluation.to_dict())
    report = write_text(out_dir / "report.md", "\n".join(lines))
    # Figures of an earlier run into the same folder (more panels, other datasets) that this
    # report does not show would pass for this run's: every PNG in plots/ is one it shows.
    text = report.read_text()
    for stale in plots.glob("*.png"):
        if f"({PLOTS}/{stale.name})" not in text:
            stale.unlink()
    return report
