"""``anomask bag``: write, play, record and evaluate rosbag2 files."""

from __future__ import annotations

import argparse
from pathlib import Path

from anomask.arguments import positive_int
from anomask.errors import AnomaskError
from anomask.export.runtime import BACKENDS
from anomask.files import require_writable_dir
from anomask.models.panoptic_methods import PANOPTIC_METHODS


def _add_write(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    parser.add_argument(
        "--images",
        type=Path,
        action="append",
        default=[],
        help="image folder of one camera (repeat for several cameras)",
    )
    parser.add_argument(
        "--semantic", type=Path, action="append", default=[], help="semantic ground-truth folder, one per --images"
    )
    parser.add_argument(
        "--anomaly",
        type=Path,
        action="append",
        default=[],
        help="anomaly ground-truth folder (0/1/255), one per --images",
    )
    parser.add_argument(
        "--instances",
        type=Path,
        action="append",
        default=[],
        help="instance-id folder (8/16-bit, 0 none), one per --images: panoptic ground truth with --semantic",
    )
    parser.add_argument(
        "--cityscapes",
        type=Path,
        help="Cityscapes-style root: leftImg8bit/SPLIT images with gtFine/SPLIT *_gtFine_labelTrainIds.png",
    )
    parser.add_argument("--split", default="val", help="split folder under --cityscapes (default: val)")
    parser.add_argument(
        "--cameras", help="comma-separated camera names, one per image folder (default: camera, camera1, ...)"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per camera (default: 10)")
    parser.add_argument("--start", type=float, default=0.0, help="stamp of the first frame in seconds (default: 0)")
    parser.add_argument(
        "--compressed", choices=("jpeg", "png"), help="write CompressedImage on <camera>/image/compressed"
    )
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument(
        "--image-glob",
        default="*.png,*.jpg,*.jpeg",
        help="comma-separated image patterns (default: *.png,*.jpg,*.jpeg)",
    )
    parser.add_argument("--semantic-glob", default="*.png")
    parser.add_argument("--anomaly-glob", default="*.png")
    parser.add_argument("--instances-glob", default="*.png")
    parser.add_argument("--limit", type=positive_int, help="at most this many frames per camera")


def _add_play(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path)
    parser.add_argument("--topics", nargs="+", default=[], help="topics to play (default: all)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default: 1)")
    parser.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    parser.add_argument("--clock", action="store_true", help="publish /clock with the bag time (for use_sim_time)")
    parser.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S s for subscribers on every topic",
    )
    parser.add_argument(
        "--min-subscribers",
        type=int,
        default=1,
        metavar="N",
        help="subscribers per topic to wait for (default: 1; e.g. 2 = node + recorder)",
    )


def _topic_count(text: str) -> tuple[str, int]:
    topic, _, count = text.rpartition("=")
    if not topic or not count.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not TOPIC=N, e.g. /camera/semantic=25")
    return topic, int(count)


def _add_record(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    parser.add_argument(
        "--topics",
        nargs="+",
        required=True,
        help="TOPIC (type from discovery) or TOPIC:pkg/msg/Type (subscribed at once)",
    )
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--duration", type=float, help="stop after S seconds")
    parser.add_argument("--count", type=int, help="stop once every topic has N messages")
    parser.add_argument(
        "--expect",
        nargs="+",
        default=[],
        type=_topic_count,
        metavar="TOPIC=N",
        help="print 'received every expected message' once each of these topics has N messages (for a caller "
        "that stops the recorder with SIGINT)",
    )
    parser.add_argument(
        "--discovery-timeout", type=float, default=10.0, help="wait up to S s for the topics' publishers (default: 10)"
    )
    parser.add_argument("--use-sim-time", action="store_true", help="stamp messages with /clock time")


def _add_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="the played bag (camera frames + ground truth, from anomask bag write)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--recording", type=Path, help="bag of the node's recorded outputs (replay mode)")
    mode.add_argument("--offline", action="store_true", help="run the model on the bag's frames directly, without ROS")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md and metrics.json")
    parser.add_argument(
        "--model",
        type=Path,
        help="exported model: run offline; in replay mode only its classes are read (needed with ground truth)",
    )
    parser.add_argument("--cameras", help="comma-separated cameras to evaluate (default: every camera in the bag)")
    parser.add_argument("--namespace", default="", help="replay: namespace of the node's output topics (default: none)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="replay: also run --model here on the frames the node answered (the same frames on both sides) and "
        "check each frame's outputs for equality; pass the node's parameters below",
    )
    offline = parser.add_argument_group("offline mode and --compare (the node's parameters of the same name)")
    offline.add_argument("--backend", default="auto", choices=("auto", *BACKENDS))
    offline.add_argument("--threshold", type=float, default=0.5, help="anomaly_threshold (default: 0.5)")
    offline.add_argument(
        "--calibrated-threshold",
        default="auto",
        help="calibrated_threshold: auto (the model's threshold for its score when it has one, else --threshold), "
        "a key of the model's thresholds, or '' (--threshold) (default: auto)",
    )
    offline.add_argument("--panoptic-method", default="eam", choices=PANOPTIC_METHODS)
    offline.add_argument("--threads", type=int, default=0, help="runtime_threads (default: 0 = one per core)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="ACTION", required=True)
    _add_write(sub.add_parser("write", help="image folders (+ ground truth) -> bag"))
    _add_play(sub.add_parser("play", help="publish a bag with its recorded timing"))
    _add_record(sub.add_parser("record", help="record topics to a bag"))
    _add_eval(
        sub.add_parser(
            "eval",
            help="metrics of a replay's recorded outputs (or of the model offline) against the bag's ground truth",
        )
    )


def _cameras(args: argparse.Namespace):
    from anomask_ros.bag.write import CameraSource

    images, semantic, anomaly, instances = (
        list(args.images),
        list(args.semantic),
        list(args.anomaly),
        list(args.instances),
    )
    if args.cityscapes:
        if images:
            raise AnomaskError("give either --cityscapes or --images, not both")
        images, semantic = [args.cityscapes / "leftImg8bit" / args.split], [args.cityscapes / "gtFine" / args.split]
        args.semantic_glob = "*_gtFine_labelTrainIds.png"
    if not images:
        raise AnomaskError("give --images (one per camera) or --cityscapes")
    for name, folders in (("--semantic", semantic), ("--anomaly", anomaly), ("--instances", instances)):
        if folders and len(folders) != len(images):
            raise AnomaskError(f"{name} must be given once per --images ({len(images)}), got {len(folders)}")
    names = args.cameras.split(",") if args.cameras else ["camera"] + [f"camera{i}" for i in range(1, len(images))]
    if len(names) != len(images):
        raise AnomaskError(f"--cameras names {len(names)} cameras but there are {len(images)} image folders")
    return [
        CameraSource(
            name,
            folder,
            semantic[i] if semantic else None,
            anomaly[i] if anomaly else None,
            instances[i] if instances else None,
        )
        for i, (name, folder) in enumerate(zip(names, images))
    ]


def _print_counts(what: str, counts: dict[str, int]) -> None:
    print(what)
    for topic, count in sorted(counts.items()):
        print(f"  {topic}: {count} messages")


def run(args: argparse.Namespace) -> int:
    if args.bag_command in ("write", "record"):
        require_writable_dir(args.out.parent, "the folder of the bag")
    elif args.bag_command == "eval":
        require_writable_dir(args.out, "--out")
    if args.bag_command == "write":
        from anomask_ros.bag.write import WriteOptions, write_bag

        cameras = _cameras(args)  # --cityscapes sets the semantic glob
        options = WriteOptions(
            rate_hz=args.rate,
            start_s=args.start,
            compression=args.compressed,
            jpeg_quality=args.jpeg_quality,
            storage=args.storage,
            image_glob=tuple(args.image_glob.split(",")),
            semantic_glob=args.semantic_glob,
            anomaly_glob=args.anomaly_glob,
            instances_glob=args.instances_glob,
            limit=args.limit,
        )
        counts = write_bag(args.out, cameras, options)
        _print_counts(f"wrote {args.out} ({args.storage})", counts)
    elif args.bag_command == "play":
        from anomask_ros.bag.play import PlayOptions, play_bag

        options = PlayOptions(
            tuple(args.topics),
            args.rate,
            args.loop,
            args.clock,
            wait_for_subscribers_s=args.wait_for_subscribers,
            min_subscribers=args.min_subscribers,
        )
        print(f"played {play_bag(args.bag, options)} messages from {args.bag}")
    elif args.bag_command == "record":
        from anomask_ros.bag.record import RecordOptions, record_bag

        options = RecordOptions(
            tuple(args.topics),
            args.storage,
            args.duration,
            args.count,
            args.discovery_timeout,
            args.use_sim_time,
            tuple(args.expect),
        )
        _print_counts(f"recorded {args.out} ({args.storage})", record_bag(args.out, options))
    else:
        from anomask_ros.bag.eval_cli import run_eval

        run_eval(args)
    return 0
