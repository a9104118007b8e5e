"""``anomask bag eval``: the two modes behind one command, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from anomask.errors import AnomaskError
from anomask_ros.bag.eval import OfflineModel, evaluate_offline, evaluate_replay, model_metadata
from anomask_ros.bag.report import comparison_line, write_report
from anomask_ros.segmenter import Segmenter, open_segmenter


def open_offline_model(
    model, backend: str, threads: int, threshold: float, calibrated: str | None
) -> tuple[Segmenter, float]:
    """(segmenter, threshold) as the node would run them: ``calibrated`` replaces
    ``threshold`` with the model's calibrated value, as the node's calibrated_threshold."""
    segmenter = open_segmenter(str(model), backend, threads)
    if calibrated:
        thresholds = segmenter.metadata.thresholds
        if calibrated not in thresholds:
            raise AnomaskError(
                f"--calibrated-threshold {calibrated!r} is not in {model}'s thresholds (it has: "
                f"{', '.join(sorted(thresholds)) or 'none'})"
            )
        threshold = float(thresholds[calibrated])
    return segmenter, threshold


def evaluate_bag(
    bag: Path,
    out: Path,
    *,
    recording: Path | None = None,
    model: Path | None = None,
    cameras: list[str] | None = None,
    namespace: str = "",
    backend: str = "auto",
    threshold: float = 0.5,
    calibrated_threshold: str | None = None,
    panoptic_method: str = "eam",
    threads: int = 0,
    compare: bool = False,
) -> dict:
    """``anomask bag eval`` as a function: replay mode with ``recording``, offline mode
    without it (``model`` required); ``compare`` (replay mode) also runs ``model`` on the
    frames the node answered. Writes ``out/report.md`` and ``out/metrics.json`` and returns
    what metrics.json holds."""
    if (recording is None or compare) and model is None:
        raise AnomaskError("the offline mode and --compare run the model: pass --model")
    segmenter = None
    try:
        if recording is None or compare:
            segmenter, threshold = open_offline_model(model, backend, threads, threshold, calibrated_threshold)
        if recording is None:
            result = evaluate_offline(bag, segmenter, threshold, panoptic_method, cameras)
        else:
            metadata = model_metadata(model) if model else None
            offline = OfflineModel(segmenter, threshold, panoptic_method) if compare else None
            result = evaluate_replay(bag, recording, metadata, cameras, namespace, offline)
    finally:
        if segmenter is not None:
            segmenter.close()
    result["model"] = str(model) if model else None
    write_report(result, out)
    return result


def run_eval(args: argparse.Namespace) -> dict:
    result = evaluate_bag(
        args.bag,
        args.out,
        recording=None if args.offline else args.recording,
        model=args.model,
        cameras=args.cameras.split(",") if args.cameras else None,
        namespace=args.namespace,
        backend=args.backend,
        threshold=args.threshold,
        calibrated_threshold=args.calibrated_threshold,
        panoptic_method=args.panoptic_method,
        threads=args.threads,
        compare=args.compare,
    )
    print(f"frames in {result['frames_in']}, out {result['frames_out']}, dropped {result['dropped']}")
    if "comparison" in result:
        print(comparison_line(result))
    quality = result.get("metrics") or {}
    for name, key in (("anomaly", "ap"), ("semantic", "miou"), ("open_set", "open_miou")):
        if key in quality.get(name, {}):
            print(f"{name} {key}: {100 * quality[name][key]:.2f}")
    print(f"wrote {args.out / 'report.md'} and {args.out / 'metrics.json'}")
    return result
