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


def _quality_lines(models: dict[str, dict]) -> list[str]:
    """The quality tables, one row per model (``node``, and ``offline`` on the same frames)."""
    lines: list[str] = []
    metrics = next(iter(models.values()))
    unavailable = {
        name: value["unavailable"]
        for name, value in metrics.items()
        if isinstance(value, dict) and "unavailable" in value
    }

    def table(columns: list[Column], values) -> str:
        return markdown_table("Model", columns, {label: values(m) for label, m in models.items()})

    anomaly, components = metrics["anomaly"], metrics["components"]
    if "unavailable" not in anomaly:
        lines += ["## Anomaly (pixels)", ""]
        lines.append(
            table(
                [Column("AP", UP), Column("AUROC", UP), Column("FPR95", DOWN)],
                lambda m: [m["anomaly"]["ap"], m["anomaly"]["auroc"], m["anomaly"]["fpr95"]],
            )
        )
        lines.append(
            f"AP, AUROC and FPR95 in %; {anomaly['positives']} anomaly and {anomaly['negatives']} inlier pixels in "
            f"{anomaly['images']} frames.\n"
        )
    if "unavailable" not in components:
        lines += ["## Anomaly (components, SMIYC)", ""]
        lines.append(
            table(
                [Column("sIoU", UP), Column("PPV", UP), Column("F1*", UP)],
                lambda m: [m["components"]["siou"], m["components"]["ppv"], m["components"]["f1_star"]],
            )
        )
        lines.append(
            f"In %; threshold {components['threshold']:.4g} (pixel-F1 optimum); {components['gt_components']} "
            f"ground-truth components.\n"
        )
    if "unavailable" not in metrics["semantic"]:
        lines += ["## Semantic and open-set", ""]
        lines.append(
            table(
                [Column("mIoU", UP), Column("Open-IoU", UP)],
                lambda m: [m["semantic"]["miou"], m["open_set"]["open_miou"]],
            )
        )
        lines.append("In %; Open-IoU of the published `open_set` map (254 = unknown at the node's threshold).\n")
    if "unavailable" not in metrics["panoptic"]:
        lines += ["## Panoptic", ""]
        groups = ("things", "stuff", "known", "unknown", "all")
        columns = [Column(f"{m} {g}", UP) for g in groups for m in ("PQ", "SQ", "RQ")]
        keys = [(g, k) for g in groups for k in ("pq", "sq", "rq")]
        lines.append(table(columns, lambda m: [m["panoptic"]["groups"][g][k] for g, k in keys]))
        lines.append("In % (COCO rules).\n")
    if unavailable:
        lines += ["## Not computed", ""]
        lines += [f"- {name}: {reason}" for name, reason in unavailable.items()]
        lines.append("")
    return lines


def dropped_line(result: dict) -> str:
    """The frames the node (or the decoder) dropped, on a line of their own."""
    return (
        f"Dropped: {result['dropped']} of {result['frames_in']} frames"
        + (" (not scored on either side)" if "comparison" in result else "")
        + "."
    )


def comparison_line(result: dict) -> str:
    """Node vs offline on the same frames: how many frames have identical outputs."""
    c = result["comparison"]
    backends = (
        f"both {c['offline_backend']}"
        if c["same_backend"]
        else f"node {c['node_backend'] or 'unknown'}, offline {c['offline_backend']}"
    )
    line = (
        f"Same frames, node vs offline ({backends}): {c['equal_frames']} of {c['frames']} frames with identical "
        f"outputs; anomaly max |difference| {c['anomaly_max_abs_diff']:.3g}."
    )
    if c["differing"]:
        shown = ", ".join(f"{name} ({', '.join(outputs)})" for name, outputs in list(c["differing"].items())[:5])
        line += f" Differing: {shown}{' ...' if len(c['differing']) > 5 else ''}."
    return line


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
    lines += ["", dropped_line(result)]
    if "comparison" in result:
        lines += ["", comparison_line(result)]
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
        models = {"node": result["metrics"]}
        if result.get("offline_metrics"):
            models["offline, same frames"] = result["offline_metrics"]
        lines += _quality_lines(models)
    else:
        lines += ["No ground truth in the bag: frames and timing only.", ""]
    return "\n".join(lines)


def write_report(result: dict, out: Path) -> tuple[Path, Path]:
    """``out/report.md`` and ``out/metrics.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / "report.md", report_markdown(result)), write_json(out / "metrics.json", result)
