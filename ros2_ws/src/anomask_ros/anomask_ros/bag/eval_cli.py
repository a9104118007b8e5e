"""``anomask bag eval``: the two modes behind one command, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from anomask.errors import AnomaskError
from anomask_ros.bag.eval import OfflineModel, evaluate_offline, evaluate_replay, model_metadata
from anomask_ros.bag.report import comparison_line, write_report
from anomask_ros.params import AUTO_THRESHOLD, choose_threshold
from anomask_ros.segmenter import Segmenter, open_segmenter


def open_offline_model(
    model, backend: str, threads: int, threshold: float, calibrated: str | None
) -> tuple[Segmenter, float, str]:
    """(segmenter, threshold, where the threshold came from) as the node would run them
    (its calibrated_threshold rule, ``anomask_ros.params.choose_threshold``)."""
    segmenter = open_segmenter(str(model), backend, threads)
    try:
        refine = segmenter.runtime.info.settings.refine
        threshold, source = choose_threshold(
            segmenter.metadata, refine, calibrated or "", threshold, name="--calibrated-threshold"
        )
    except AnomaskError:
        segmenter.close()
        raise
    return segmenter, threshold, source


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
    calibrated_threshold: str | None = AUTO_THRESHOLD,
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
    segmenter, source = None, None
    try:
        if recording is None or compare:
            segmenter, threshold, source = open_offline_model(model, backend, threads, threshold, calibrated_threshold)
        if recording is None:
            result = evaluate_offline(bag, segmenter, threshold, panoptic_method, cameras)
        else:
            metadata = model_metadata(model) if model else None
            offline = OfflineModel(segmenter, threshold, panoptic_method) if compare else None
            result = evaluate_replay(bag, recording, metadata, cameras, namespace, offline)
    finally:
        if segmenter is not None:
            segmenter.close()
    if recording is None:
        result["threshold_source"] = source
    result["model"] = str(model) if model else None
    write_report(result, out)
    return result


HEADLINE = (
    ("anomaly", "ap", "anomaly AP"),
    ("semantic", "miou", "semantic mIoU"),
    ("open_set", "open_miou", "Open-IoU"),
)


def headline(quality: dict) -> list[str]:
    """The headline numbers in %, as report.md and ``anomask eval``'s report show them
    (metrics.json holds the fractions: AP 0.85 % is 0.0085 there)."""
    return [
        f"{label}: {100 * quality[name][key]:.2f} %" for name, key, label in HEADLINE if key in quality.get(name, {})
    ]


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
    if "threshold_source" in result:
        print(f"anomaly threshold {result['threshold']:.4g} from {result['threshold_source']}")
    if "comparison" in result:
        print(comparison_line(result))
    for line in headline(result.get("metrics") or {}):
        print(line)
    print(f"wrote {args.out / 'report.md'} and {args.out / 'metrics.json'}")
    return result
