"""``report.md`` + ``metrics.json`` of a bag evaluation, written with the evaluation
package's table and file writers (``anomask.evaluation.report.markdown_table``,
``anomask.evaluation.output_files``: atomic, NaN as null)."""

from __future__ import annotations

from pathlib import Path

from anomask.evaluation.output_files import write_json, write_text
from anomask.evaluation.report import DOWN, UP, Column, markdown_table


def _ms(summary: dict | None) -> list[str]:
    if summary is None:
        return ["-"] * 4
    return [f"{summary[key]:.1f}" for key in ("p50", "p99", "mean", "max")]


def _quality_lines(metrics: dict) -> list[str]:
    lines: list[str] = []
    unavailable = {
        name: value["unavailable"]
        for name, value in metrics.items()
        if isinstance(value, dict) and "unavailable" in value
    }
    anomaly, components = metrics["anomaly"], metrics["components"]
    if "unavailable" not in anomaly:
        lines += ["## Anomaly (pixels)", ""]
        lines.append(
            markdown_table(
                "Model",
                [Column("AP", UP), Column("AUROC", UP), Column("FPR95", DOWN)],
                {"node": [anomaly["ap"], anomaly["auroc"], anomaly["fpr95"]]},
            )
        )
        lines.append(
            f"AP, AUROC and FPR95 in %; {anomaly['positives']} anomaly and {anomaly['negatives']} inlier pixels in "
            f"{anomaly['images']} frames.\n"
        )
    if "unavailable" not in components:
        lines += ["## Anomaly (components, SMIYC)", ""]
        lines.append(
            markdown_table(
                "Model",
                [Column("sIoU", UP), Column("PPV", UP), Column("F1*", UP)],
                {"node": [components["siou"], components["ppv"], components["f1_star"]]},
            )
        )
        lines.append(
            f"In %; threshold {components['threshold']:.4g} (pixel-F1 optimum); {components['gt_components']} "
            f"ground-truth components.\n"
        )
    if "unavailable" not in metrics["semantic"]:
        lines += ["## Semantic and open-set", ""]
        lines.append(
            markdown_table(
                "Model",
                [Column("mIoU", UP), Column("Open-IoU", UP)],
                {"node": [metrics["semantic"]["miou"], metrics["open_set"]["open_miou"]]},
            )
        )
        lines.append("In %; Open-IoU of the published `open_set` map (254 = unknown at the node's threshold).\n")
    panoptic = metrics["panoptic"]
    if "unavailable" not in panoptic:
        lines += ["## Panoptic", ""]
        groups = ("things", "stuff", "known", "unknown", "all")
        columns = [Column(f"{m} {g}", UP) for g in groups for m in ("PQ", "SQ", "RQ")]
        values = [panoptic["groups"][g][m] for g in groups for m in ("pq", "sq", "rq")]
        lines.append(markdown_table("Model", columns, {"node": values}))
        lines.append("In % (COCO rules).\n")
    if unavailable:
        lines += ["## Not computed", ""]
        lines += [f"- {name}: {reason}" for name, reason in unavailable.items()]
        lines.append("")
    return lines


def report_markdown(result: dict) -> str:
    mode = result["mode"]
    lines = [f"# Bag evaluation ({mode})", "", f"- bag: `{result['bag']}`"]
    if mode == "replay":
        lines.append(f"- recording: `{result['recording']}`")
        node = ((result.get("node_diagnostics") or {}).get("inference") or {}).get("values", {})
        if "anomaly threshold" in node:
            lines.append(f"- the node's threshold: {node['anomaly threshold']} (from {node.get('threshold source')})")
    else:
        source = f" (from {result['threshold_source']})" if "threshold_source" in result else ""
        lines.append(f"- threshold: {result['threshold']:.4g}{source}, panoptic method: {result['panoptic_method']}")
    lines += [
        f"- cameras: {', '.join(result['cameras'])}",
        "",
        "## Frames",
        "",
        "| camera | in | out | dropped | reasons |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for camera, counts in result["per_camera"].items():
        reasons = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items()) or "-"
        lines.append(f"| {camera} | {counts['in']} | {counts['out']} | {counts['in'] - counts['out']} | {reasons} |")
    lines += ["", "## Timing (ms)", "", "| measure | p50 | p99 | mean | max |", "| --- | ---: | ---: | ---: | ---: |"]
    labels = {
        "latency_ms": "end-to-end latency (camera frame received -> last output received)",
        "age_ms": "output age (node clock at the output - header stamp)",
        "processing_ms": "offline processing per frame (decode, inference, panoptic, resize)",
    }
    for key, label in labels.items():
        if result.get(key) is not None:
            lines.append(f"| {label} | " + " | ".join(_ms(result[key])) + " |")
    lines.append("")
    if result.get("metrics"):
        lines += _quality_lines(result["metrics"])
    else:
        lines += ["No ground truth in the bag: frames and timing only.", ""]
    return "\n".join(lines)


def write_report(result: dict, out: Path) -> tuple[Path, Path]:
    """``out/report.md`` and ``out/metrics.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / "report.md", report_markdown(result)), write_json(out / "metrics.json", result)
