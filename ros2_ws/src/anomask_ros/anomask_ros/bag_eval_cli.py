"""``anomask bag eval``: the two modes behind one command, and the report."""

from __future__ import annotations

import argparse

from anomask.errors import AnomaskError
from anomask_ros.bag_eval import evaluate_offline, evaluate_replay, model_metadata
from anomask_ros.bag_report import write_report


def open_offline_model(model, backend: str, threads: int, threshold: float, calibrated: str | None):
    """(segmenter, threshold) as the node would run them: ``calibrated`` replaces
    ``threshold`` with the model's calibrated value, as the node's calibrated_threshold."""
    from anomask_ros.segmenter import open_segmenter

    segmenter = open_segmenter(str(model), backend, threads)
    if calibrated:
        thresholds = segmenter.metadata.thresholds
        if calibrated not in thresholds:
            raise AnomaskError(f"--calibrated-threshold {calibrated!r} is not in {model}'s thresholds (it has: {', '.join(sorted(thresholds)) or 'none'})")
        threshold = float(thresholds[calibrated])
    return segmenter, threshold


def run_eval(args: argparse.Namespace) -> dict:
    cameras = args.cameras.split(",") if args.cameras else None
    if args.offline:
        if args.model is None:
            raise AnomaskError("--offline runs the model: pass --model")
        segmenter, threshold = open_offline_model(args.model, args.backend, args.threads, args.threshold, args.calibrated_threshold)
        try:
            result = evaluate_offline(args.bag, segmenter, threshold, args.panoptic_method, cameras)
        finally:
            segmenter.close()
        result["model"] = str(args.model)
    else:
        metadata = model_metadata(args.model) if args.model else None
        result = evaluate_replay(args.bag, args.recording, metadata, cameras, args.namespace)
        result["model"] = str(args.model) if args.model else None
    report, metrics = write_report(result, args.out)
    print(f"frames in {result['frames_in']}, out {result['frames_out']}, dropped {result['dropped']}")
    quality = result.get("metrics") or {}
    for name, key in (("anomaly", "ap"), ("semantic", "miou"), ("open_set", "open_miou")):
        if key in quality.get(name, {}):
            print(f"{name} {key}: {100 * quality[name][key]:.2f}")
    print(f"wrote {report} and {metrics}")
    return result
