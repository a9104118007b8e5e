"""``anomask bag eval`` on a real replay: ``anomask bag write`` -> ``run_replay`` (node,
``anomask bag play`` and ``anomask bag record`` as processes) -> eval, against the offline
mode on the same bag; plus a bag without ground truth, missing topics and a truncated
recording."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomask.cli import main
from anomask.errors import AnomaskError
from anomask_ros.bag.eval import evaluate_replay, model_metadata
from anomask_ros.bag.record import EXPECTED_LINE
from anomask_ros.bag.replay import run_replay

FRAMES, HEIGHT, WIDTH = 5, 64, 128  # conftest.SMALL_INPUT


def write_drive(root: Path) -> dict[str, Path]:
    """Frames with semantic (road, sky, car, an unknown blob = 254, a void strip), anomaly
    (the blob) and instance ground truth (the car and the blob)."""
    folders = {kind: root / kind for kind in ("images", "semantic", "anomaly", "instances")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(FRAMES):
        image = cv2.resize(
            rng.integers(0, 256, (4, 8, 3), dtype=np.uint8), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC
        )
        semantic = np.zeros((HEIGHT, WIDTH), np.uint8)
        semantic[: HEIGHT // 2] = 1
        semantic[40:56, 10 + 8 * index : 40 + 8 * index] = 2
        semantic[36:60, 70:100] = 254
        semantic[:, :2] = 255
        anomaly = np.where(semantic == 254, 1, 0).astype(np.uint8)
        anomaly[semantic == 255] = 255
        instances = np.zeros((HEIGHT, WIDTH), np.uint16)
        instances[semantic == 2] = 1
        instances[semantic == 254] = 2
        name = f"drive_{index:03d}.png"
        for kind, array in (("images", image), ("semantic", semantic), ("anomaly", anomaly), ("instances", instances)):
            cv2.imwrite(str(folders[kind] / name), array)
    return folders


def cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def replayed(small_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("bag_eval")
    folders = write_drive(root)
    bag = root / "drive"
    cli(
        "bag",
        "write",
        str(bag),
        "--images",
        str(folders["images"]),
        "--semantic",
        str(folders["semantic"]),
        "--anomaly",
        str(folders["anomaly"]),
        "--instances",
        str(folders["instances"]),
        "--cameras",
        "front",
        "--rate",
        "10",
    )
    plain = root / "plain"  # the same frames and stamps, no ground truth
    cli("bag", "write", str(plain), "--images", str(folders["images"]), "--cameras", "front", "--rate", "10")
    # rate 0.25: a frame every 400 ms, several inference times apart, so every frame is processed
    run = run_replay(
        bag,
        small_model.onnx,
        root / "recording",
        rate=0.25,
        parameters={"runtime_threads": 1},
        logs=root / "logs",
        log=lambda _: None,
    )
    return root, bag, plain, run


def test_replay_gives_the_offline_metrics_and_replay_timing(small_model, replayed) -> None:
    root, bag, _, run = replayed
    cli(
        "bag",
        "eval",
        str(bag),
        "--recording",
        str(run.recording),
        "--model",
        str(small_model.onnx),
        "--out",
        str(root / "replay_eval"),
    )
    replay = json.loads((root / "replay_eval" / "metrics.json").read_text())
    assert run.frames_out == run.frames_in == {"front": FRAMES}, (replay["node_diagnostics"], replay["per_frame"])
    assert run.node_status == 0
    # the recorder had every output before its SIGINT (which would lose the ones still queued in it)
    assert EXPECTED_LINE in (run.logs / "record.log").read_text()
    cli(
        "bag",
        "eval",
        str(bag),
        "--offline",
        "--model",
        str(small_model.onnx),
        "--threads",
        "1",
        "--out",
        str(root / "offline_eval"),
    )
    offline = json.loads((root / "offline_eval" / "metrics.json").read_text())
    assert replay["frames_in"] == replay["frames_out"] == offline["frames_out"] == FRAMES and replay["dropped"] == 0
    assert json.dumps(replay["metrics"], sort_keys=True) == json.dumps(offline["metrics"], sort_keys=True)
    metrics = replay["metrics"]
    assert metrics["frames_evaluated"] == {"anomaly": FRAMES, "semantic": FRAMES, "panoptic": FRAMES}
    assert 0.0 <= metrics["anomaly"]["ap"] <= 1.0 and metrics["anomaly"]["positives"] == FRAMES * 24 * 30
    assert "miou" in metrics["semantic"] and "open_miou" in metrics["open_set"] and "groups" in metrics["panoptic"]
    assert replay["latency_ms"]["frames"] == FRAMES and 0 < replay["latency_ms"]["p50"] < 5000
    assert replay["age_ms"]["frames"] == FRAMES and 0 <= replay["age_ms"]["p50"] < 5000
    node = replay["node_diagnostics"]["camera front"]["values"]  # its last report, up to a second old
    assert 0 < int(node["published"]) <= FRAMES and node["dropped"] == "0"
    report = (root / "replay_eval" / "report.md").read_text()
    for heading in ("## Frames", "## Timing (ms)", "## Anomaly (pixels)", "## Semantic and open-set", "## Panoptic"):
        assert heading in report
    assert "| front | 5 | 5 | 0 | - |" in report
    # Both sides say which threshold they ran: the small model has no calibrated one.
    source = "anomaly_threshold (calibrated_threshold auto: the model metadata has no eam@tpr95)"
    assert offline["threshold"] == 0.5 and offline["threshold_source"] == source
    assert f"- the node's threshold: 0.500 (from {source})" in report


def test_bag_without_ground_truth_gives_rates_and_latency_only(replayed) -> None:
    root, _, plain, run = replayed
    result = evaluate_replay(plain, run.recording, None)
    assert result["metrics"] is None
    assert (result["frames_in"], result["frames_out"]) == (FRAMES, FRAMES)
    assert result["latency_ms"]["frames"] == FRAMES
    cli("bag", "eval", str(plain), "--recording", str(run.recording), "--out", str(root / "plain_eval"))
    assert "No ground truth in the bag: frames and timing only." in (root / "plain_eval" / "report.md").read_text()


def test_missing_topics_list_what_the_bag_has(small_model, replayed) -> None:
    _, bag, _, run = replayed
    metadata = model_metadata(small_model.onnx)
    with pytest.raises(
        AnomaskError, match=r"no image topic for camera rear .*it has: .*/front/image \(sensor_msgs/msg/Image, 5 msgs\)"
    ):
        evaluate_replay(bag, run.recording, metadata, cameras=["rear"])
    with pytest.raises(AnomaskError, match=r"has no topic /car1/front/semantic.*; it has: .*/front/semantic"):
        evaluate_replay(bag, run.recording, metadata, namespace="car1")


def test_truncated_recording_is_a_clear_error(small_model, replayed, tmp_path: Path) -> None:
    _, bag, _, run = replayed
    broken = tmp_path / "broken"
    shutil.copytree(run.recording, broken)
    data = next(broken.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(AnomaskError, match="truncated or corrupt"):
        evaluate_replay(bag, broken, model_metadata(small_model.onnx))


def test_printed_numbers_are_percent_and_say_so() -> None:
    """Issue 17: "anomaly ap: 0.85" meant percent while metrics.json holds 0.0085."""
    from anomask_ros.bag.eval_cli import headline

    quality = {"anomaly": {"ap": 0.0085}, "semantic": {"miou": 0.5}, "open_set": {"open_miou": 0.25}}
    assert headline(quality) == ["anomaly AP: 0.85 %", "semantic mIoU: 50.00 %", "Open-IoU: 25.00 %"]
    assert headline({"anomaly": {"unavailable": "no anomaly ground truth"}}) == []


def test_offline_eval_of_a_checkpoint(small_model, replayed) -> None:
    """``anomask bag eval --offline --model model.safetensors``: the PyTorch backend serves it."""
    root, bag, _, _ = replayed
    out = cli("bag", "eval", str(bag), "--offline", "--model", str(small_model.checkpoint), "--out", str(root / "ck"))
    result = json.loads((root / "ck" / "metrics.json").read_text())
    assert result["frames_out"] == FRAMES and result["metrics"]["frames_evaluated"]["anomaly"] == FRAMES
    assert "anomaly AP:" in out


def without_one_frame(recording: Path, out: Path) -> int:
    """A copy of ``recording`` without the node's outputs for its third frame, as if the node
    had dropped it; the dropped frame's header stamp (ns)."""
    from anomask_ros.bag.io import add_topic, bag_writer, header_stamp_ns, open_bag, read_raw

    with open_bag(recording) as reader:
        stamps = sorted(
            header_stamp_ns(data, "/front/semantic")
            for _, _, data in read_raw(reader, [c for c in reader.connections if c.topic == "/front/semantic"], out)
        )
        dropped = stamps[2]
        with bag_writer(out, "mcap") as writer:
            connections = {c.topic: add_topic(writer, c.topic, c.msgtype) for c in reader.connections}
            for connection, when, data in read_raw(reader, list(reader.connections), recording):
                output = connection.topic.startswith("/front/") and connection.topic != "/front/image"
                if not (output and header_stamp_ns(data, connection.topic) == dropped):
                    writer.write(connections[connection.topic], when, bytes(data))
    return dropped


def test_replay_and_offline_are_compared_on_the_same_frames(small_model, replayed) -> None:
    """The node dropped a frame: that frame is scored on neither side, the drop has its own
    line, and every compared frame's outputs are identical (same backend and threads)."""
    root, bag, _, run = replayed
    without_one_frame(run.recording, root / "dropped_one")
    out = root / "compared"
    printed = cli(
        "bag",
        "eval",
        str(bag),
        "--recording",
        str(root / "dropped_one"),
        "--model",
        str(small_model.onnx),
        "--compare",
        "--threads",
        "1",
        "--out",
        str(out),
    )
    result = json.loads((out / "metrics.json").read_text())
    assert (result["frames_in"], result["frames_out"], result["dropped"]) == (FRAMES, FRAMES - 1, 1)
    comparison = result["comparison"]
    assert comparison["frames"] == FRAMES - 1 and comparison["equal_frames"] == FRAMES - 1, comparison
    assert comparison["same_backend"] and comparison["anomaly_max_abs_diff"] == 0.0
    for side in ("metrics", "offline_metrics"):
        assert result[side]["frames_evaluated"] == dict.fromkeys(("anomaly", "semantic", "panoptic"), FRAMES - 1)
    assert json.dumps(result["metrics"], sort_keys=True) == json.dumps(result["offline_metrics"], sort_keys=True)
    report = (out / "report.md").read_text()
    assert "\nDropped: 1 of 5 frames (not scored on either side).\n" in report
    assert "both onnxruntime): 4 of 4 frames with identical outputs" in report
    assert "| offline, same frames |" in report and "4 of 4 frames with identical outputs" in printed
