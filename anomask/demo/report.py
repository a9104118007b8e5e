"""``OUT/report.md`` of ``anomask demo``: the pipeline's stages and times, the metrics of the
checkpoint (``anomask eval``), of the exported model offline and of the real node in the
replay (``anomask bag eval``), the latency table, and a few of the node's frames side by
side. Tables are the evaluation package's (``markdown_table``), the frames are coloured with
the node's own colour views (``anomask_ros.outputs.OutputBuilder``), so the report shows
exactly what a vehicle would publish.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from anomask.demo.stages import MARKER, read_marker
from anomask.errors import AnomaskError
from anomask.evaluation.output_files import write_text
from anomask.evaluation.report import DOWN, UP, Column, markdown_table
from anomask.training.data.imageio import write_png
from anomask_ros.bag.report import comparison_line

PANOPTIC_METHOD = "eam"
"""The node's default ``panoptic_method``: the evaluation row shows the same method."""
NODE_STAGES = ("wait", "decode", "inference", "postprocess", "publish", "total", "overhead")
FRAME_VIEWS = ("input", "semantic", "anomaly", "panoptic")


def _load(out: Path, relative: str) -> dict[str, Any]:
    path = out / relative
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnomaskError(f"{path}: cannot read the stage's metrics ({error})") from error


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# -- metrics -------------------------------------------------------------------------------
def _pixel(result: dict | None) -> list[float | None]:
    if not result or "unavailable" in result:
        return [None, None, None]
    return [result["ap"], result["fpr95"], result["auroc"]]


def _panoptic(result: dict | None) -> list[float | None]:
    if not result or "unavailable" in result:
        return [None, None]
    return [result["groups"]["all"]["pq"], result["groups"]["unknown"]["pq"]]


def evaluation_row(metrics: dict, score: str) -> tuple[list[float | None], dict[str, Any]]:
    """The checkpoint's row (unseen anomalies of the test split; mIoU on the val split;
    open-IoU and PQ on the whole test split) and the facts its footnote needs."""
    anomaly = metrics["datasets"]["synthetic-anomaly"]
    subsets = anomaly.get("anomaly", {})
    unseen = next((name for name in subsets if name.endswith("(unseen)")), None)
    val = metrics["datasets"].get("synthetic-val", {})
    open_set = anomaly.get("open_set", {}).get(score, {})
    row = [
        *_pixel(subsets.get(unseen, {}).get(score)),
        val.get("semantic", {}).get("miou"),
        open_set.get("open_miou"),
        *_panoptic(anomaly.get("panoptic", {}).get(PANOPTIC_METHOD)),
    ]
    facts = {
        "unseen_images": anomaly.get("subsets", {}).get(unseen),
        "val_images": val.get("images"),
        "test_images": anomaly["images"],
        "all": _pixel(subsets.get("synthetic-anomaly", {}).get(score)),
        "seen": _pixel(next((subsets[n] for n in subsets if n.endswith("(seen)")), {}).get(score)),
    }
    return row, facts


def bag_row(result: dict) -> list[float | None]:
    quality = result.get("metrics") or {}
    semantic = quality.get("semantic", {})
    return [
        *_pixel(quality.get("anomaly")),
        semantic.get("miou"),
        quality.get("open_set", {}).get("open_miou"),
        *_panoptic(quality.get("panoptic")),
    ]


COLUMNS = [
    Column("AP", UP),
    Column("FPR95", DOWN),
    Column("AUROC", UP),
    Column("mIoU", UP),
    Column("open-IoU", UP),
    Column("PQ", UP),
    Column("PQ unknown", UP),
]


def metrics_section(out: Path, summaries: dict[str, dict]) -> list[str]:
    score = summaries["evaluate"]["score"]
    evaluation = _load(out, summaries["evaluate"]["metrics"])
    offline = _load(out, summaries["offline"]["metrics"])
    replay = _load(out, summaries["bag_eval"]["metrics"])
    checkpoint, facts = evaluation_row(evaluation, score)
    frames = summaries["bag"]["frames"]
    # The offline model on the frames the node answered (bag eval --compare), so that both rows
    # score the same frames; an older bag_eval without it: the offline stage's, on every frame.
    same_frames = replay.get("offline_metrics") is not None
    offline_label = (
        "ONNX, offline, the node's frames (`anomask bag eval --compare`)"
        if same_frames
        else "ONNX, offline (`anomask bag eval --offline`)"
    )
    rows = {
        "checkpoint, PyTorch (`anomask eval`)": checkpoint,
        offline_label: bag_row({"metrics": replay["offline_metrics"]} if same_frames else offline),
        "**node, ROS 2 replay** (`anomask bag eval`)": bag_row(replay),
    }
    threshold = summaries["offline"]["threshold_key"] or "the node's default anomaly_threshold"
    lines = [
        "## Metrics",
        "",
        f"Anomaly score `{score}`; values in %, best of each column in bold.",
        "",
        markdown_table("model", COLUMNS, rows),
    ]
    lines.append(
        f"Dropped by the node: {replay['dropped']} of {replay['frames_in']} frames"
        + (" (scored on neither side)." if same_frames else ".")
    )
    if "comparison" in replay:
        lines += ["", comparison_line(replay)]
    lines += [
        "",
        f"- Anomaly AP / FPR95 / AUROC: pixels of the test frames with **unseen** anomalies (objects never pasted in "
        f"training): {facts['unseen_images']} frames for the checkpoint, the same {frames} frames in the bag for "
        f"the node. "
        f"The checkpoint on all {facts['test_images']} test frames: AP {_percent(facts['all'][0])}, FPR95 "
        f"{_percent(facts['all'][1])}; "
        f"seen anomalies only: AP {_percent(facts['seen'][0])}, FPR95 {_percent(facts['seen'][1])}.",
        f"- mIoU: the checkpoint on the val split ({facts['val_images']} frames, no anomalies); the node on the bag's "
        f"{frames} frames (anomaly pixels are void for it).",
        f"- open-IoU and PQ (`{PANOPTIC_METHOD}` open-set panoptic, all / unknown): the checkpoint on all test frames, "
        f"thresholds: {evaluation['settings']['thresholds']}; the node on the bag's frames at `{threshold}` "
        f"(calibrated by `anomask train` on the seen-only anomaly validation split).",
        "",
    ]
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


# -- latency -------------------------------------------------------------------------------
def _ms_row(label: str, summary: dict | None) -> str:
    if not summary:
        return f"| {label} | - | - | - | - |"
    return f"| {label} | " + " | ".join(f"{summary[k]:.1f}" for k in ("p50", "p99", "mean", "max")) + " |"


def latency_section(out: Path, summaries: dict[str, dict]) -> list[str]:
    evaluation = _load(out, summaries["evaluate"]["metrics"])
    replay = _load(out, summaries["bag_eval"]["metrics"])
    offline = _load(out, summaries["offline"]["metrics"])
    bag, run = summaries["bag"], summaries["replay"]
    timing = evaluation["timing"]
    lines = [
        "## Latency (ms)",
        "",
        f"Replay: {bag['frames']} frames stamped at {bag['rate_hz']:g} Hz, played at rate {run['rate']:g} "
        f"({bag['rate_hz'] * run['rate']:.2g} frames/s, chosen from the offline time per frame); frames in "
        f"{replay['frames_in']}, out {replay['frames_out']}, dropped {replay['dropped']}.",
        "",
        "| measure | p50 | p99 | mean | max |",
        "| --- | ---: | ---: | ---: | ---: |",
        _ms_row(
            "node replay: end-to-end (camera frame received -> last output received, recorder's clock)",
            replay.get("latency_ms"),
        ),
        _ms_row("node replay: output age (bag clock at the output - header stamp)", replay.get("age_ms")),
        _ms_row(
            "offline: decode + inference + panoptic + resize per frame (ONNX Runtime)", offline.get("processing_ms")
        ),
    ]
    status = (replay.get("node_diagnostics") or {}).get("inference")
    if status:
        values = status["values"]
        for stage in NODE_STAGES:
            if f"{stage} p50 ms" in values:
                lines.append(
                    f"| node /diagnostics: {stage} | {float(values[f'{stage} p50 ms']):.1f} | "
                    f"{float(values[f'{stage} p99 ms']):.1f} | | |"
                )
        lines.append(
            f"| checkpoint (PyTorch, `anomask eval`): network + heads per image | | | "
            f"{timing['network_and_heads_ms_per_image']:.1f} | |"
        )
        lines += [
            "",
            f"The node ran the `{values.get('backend', '?')}` backend, input size (W x H) "
            f"{values.get('input size', '?')}, "
            f"anomaly threshold {values.get('anomaly threshold', '?')}.",
        ]
    else:
        lines.append(
            f"| checkpoint (PyTorch, `anomask eval`): network + heads per image | | | "
            f"{timing['network_and_heads_ms_per_image']:.1f} | |"
        )
    lines.append("")
    return lines


# -- frames --------------------------------------------------------------------------------
def node_frames(recording: Path, camera: str, count: int) -> list[tuple[int, dict[str, np.ndarray]]]:
    """``count`` evenly spaced frames of the recording: the played camera image and the
    node's semantic, anomaly and panoptic outputs, by header stamp."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from anomask_ros.bag.io import connections_for, header_stamp_ns, open_bag, read_raw
    from anomask_ros.image_codec import image_view

    topics = {f"/{camera}/{name}": name for name in ("image", "semantic", "anomaly", "panoptic")}
    with open_bag(recording) as reader:
        semantic = connections_for(reader, [f"/{camera}/semantic"], recording)
        stamps = sorted({header_stamp_ns(data, c.topic) for c, _, data in read_raw(reader, semantic, recording)})
    if not stamps or count < 1:
        return []
    chosen = {stamps[int(i)] for i in np.unique(np.linspace(0, len(stamps) - 1, min(count, len(stamps))).round())}
    frames: dict[int, dict[str, np.ndarray]] = {stamp: {} for stamp in chosen}
    with open_bag(recording) as reader:
        for connection, _, data in read_raw(reader, connections_for(reader, list(topics), recording), recording):
            stamp = header_stamp_ns(data, connection.topic)
            if stamp in frames:
                frames[stamp][topics[connection.topic]] = np.array(image_view(deserialize_message(data, Image)))
    return [(stamp, maps) for stamp, maps in sorted(frames.items()) if len(maps) == len(topics)]


def frames_section(out: Path, folder: Path, summaries: dict[str, dict], count: int) -> list[str]:
    from anomask_ros.bag.eval import model_metadata
    from anomask_ros.outputs import OutputBuilder

    metadata = model_metadata(out / summaries["export"]["onnx"])
    frames = node_frames(out / summaries["replay"]["recording"], "camera", count)
    if not frames:
        return ["## Frames", "", "No frame of the replay has every output (see the replay logs).", ""]
    builder = OutputBuilder(metadata, (), "mono8")
    scores = np.concatenate([maps["anomaly"].ravel() for _, maps in frames])
    low, high = (float(v) for v in np.percentile(scores, (1, 99)))
    high = high if high > low else low + 1.0
    lines = [
        "## Frames",
        "",
        f"The node's published outputs in the replay, coloured with the node's own colour views: semantic palette, "
        f"`{metadata.score}` score as an inferno heat map over [{low:.3g}, {high:.3g}] (1st-99th percentile of these "
        f"frames), open-set panoptic (`{PANOPTIC_METHOD}`; unknown instances white, each instance shifted in colour).",
        "",
        "| stamp (s) | " + " | ".join(FRAME_VIEWS) + " |",
        "| --- |" + " --- |" * len(FRAME_VIEWS),
    ]
    for number, (stamp, maps) in enumerate(frames):
        views = {
            "input": maps["image"],
            "semantic": builder.lut[maps["semantic"]],
            "anomaly": OutputBuilder.heat_map(maps["anomaly"], (low, high)),
            "panoptic": builder.panoptic_colors(maps["panoptic"]),
        }
        cells = []
        for name in FRAME_VIEWS:
            path = folder / f"frame{number}_{name}.png"
            write_png(path, views[name])
            cells.append(f"![{name}]({path.relative_to(out).as_posix()})")
        lines.append(f"| {stamp / 1e9:.1f} | " + " | ".join(cells) + " |")
    panels = sorted((out / "evaluate" / "plots").glob("panel_synthetic_anomaly_*.png"))
    if panels:
        lines += ["", "The checkpoint on test frames with their anomaly ground truth (`anomask eval` panels):", ""]
        lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in panels]
    lines.append("")
    return lines


# -- the report ------------------------------------------------------------------------------
def stages_section(out: Path, names: tuple[str, ...], summaries: dict[str, dict]) -> list[str]:
    lines = ["## Stages", "", "| stage | wall time | finished | output |", "| --- | ---: | --- | --- |"]
    outputs = {
        "data": "data/",
        "train": summaries["train"]["model"],
        "evaluate": summaries["evaluate"]["report"],
        "export": summaries["export"]["onnx"]
        + (
            f", {summaries['export']['engine']}"
            if "engine" in summaries["export"]
            else f" (no TensorRT engine: {summaries['export'].get('engine_skipped')})"
        ),
        "bag": summaries["bag"]["bag"],
        "offline": summaries["offline"]["report"],
        "replay": summaries["replay"]["recording"],
        "bag_eval": summaries["bag_eval"]["report"],
        "report": "report.md",
    }
    total = 0.0
    for name in names:
        marker = read_marker(out / name)
        if marker is None:
            lines.append(f"| {name} | (this report) | {time.strftime('%Y-%m-%d %H:%M:%S')} | `{outputs[name]}` |")
            continue
        total += marker["seconds"]
        lines.append(f"| {name} | {_duration(marker['seconds'])} | {marker['finished']} | `{outputs[name]}` |")
    lines += [f"| **all** (without this report) | **{_duration(total)}** | | |", ""]
    return lines


def header(summaries: dict[str, dict], environment: dict[str, Any]) -> list[str]:
    train = summaries["train"]
    stages = ", ".join(f"{name} {s.get('iterations', '?')} iterations" for name, s in train["stages"].items())
    load = ", ".join(f"{x:g}" for x in environment["load_average"])
    return [
        "# anomask demo",
        "",
        f"The whole journey on the embedded synthetic default: {stages} of the small preset (UNO recipe), "
        f"evaluation, ONNX export, a rosbag2 of unseen-anomaly drives replayed through the real ROS 2 node.",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {environment['machine']}, {environment['cpu_count']} CPUs, load average {load} (1/5/15 min, "
        f"at the report) |",
        f"| device | {environment['device']}, torch threads: {environment['torch_threads']}, Python "
        f"{environment['python']} |",
        f"| training command | `{train['command']}` |",
        "",
    ]


def write_demo_report(
    out: Path,
    folder: Path,
    summaries: dict[str, dict],
    names: tuple[str, ...],
    environment: dict[str, Any],
    frames: int,
) -> Path:
    """Write ``out/report.md`` (frame images into ``folder``); returns its path."""
    lines = header(summaries, environment)
    lines += metrics_section(out, summaries)
    lines += latency_section(out, summaries)
    lines += frames_section(out, folder, summaries, frames)
    lines += stages_section(out, names, summaries)
    details = [
        ("evaluation report (every score, seen/unseen, components, per class, plots)", summaries["evaluate"]["report"]),
        ("bag evaluation of the replay", summaries["bag_eval"]["report"]),
        ("bag evaluation offline", summaries["offline"]["report"]),
        ("export parity (ONNX Runtime vs PyTorch)", str(Path(summaries["export"]["onnx"]).with_name("parity.txt"))),
        ("replay logs (node, player, recorder)", summaries["replay"]["logs"]),
    ]
    lines += [
        "## Details",
        "",
        *[f"- {text}: [`{path}`]({path})" for text, path in details],
        f"- stage markers: `<stage>/{MARKER}`",
        "",
    ]
    return write_text(out / "report.md", "\n".join(lines))
