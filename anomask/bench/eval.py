"""``anomask bench eval``: memory and speed of the streaming metrics as the dataset grows.

Each dataset size runs in a fresh process (so its peak RSS belongs to that size alone) that
generates synthetic score maps, labels and panoptic maps one image at a time -- never more
than one in memory -- and feeds them through every requested metric. Scores are uniform
random float32 (the worst case for the exact pixel table: nearly every pixel a distinct
value). Prints a table: peak RSS (ru_maxrss) after the imports, after the first image and
at the end; flat across sizes is the point. An all-in-memory evaluation would hold at least
the "pooled" column (float32 score + uint8 label per pixel). Times are per image and metric;
making the synthetic data ("data ms") is not in them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError
from anomask.evaluation.metrics.components import ANOMALY_TRACK, ComponentAccumulator
from anomask.evaluation.metrics.goss import GossAccumulator
from anomask.evaluation.metrics.panoptic import PanopticAccumulator
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.metrics.semantic import OpenSetAccumulator
from anomask.models.metadata import ClassInfo

METRICS = ("pixel", "component", "semantic", "panoptic", "goss")
START_METHOD = "spawn"
"""A fresh interpreter per size: its peak RSS owes nothing to earlier sizes."""
NUM_CLASSES = 19
THING_IDS = range(11, 19)
"""Cityscapes layout: 19 known classes, 11..18 things."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images",
        type=int,
        nargs="+",
        default=[10, 100, 400],
        help="dataset sizes to stream, one process each (default %(default)s)",
    )
    parser.add_argument("--height", type=int, default=1024, help="image height (default %(default)s)")
    parser.add_argument("--width", type=int, default=2048, help="image width (default %(default)s)")
    parser.add_argument(
        "--metrics", nargs="+", choices=METRICS, default=list(METRICS), help="metrics to run (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default %(default)s)")
    add_out_argument(parser)


@dataclass(frozen=True)
class Sample:
    scores: np.ndarray
    anomaly: np.ndarray
    prediction: np.ndarray
    semantic: np.ndarray
    panoptic_prediction: np.ndarray
    panoptic_truth: np.ndarray


def synthetic_sample(rng: np.random.Generator, height: int, width: int) -> Sample:
    """Class bands, a few thing and anomaly boxes, an ignored top strip; the prediction is the
    truth shifted by a few pixels (boundary errors), scores are uniform noise lifted on anomalies."""
    band = (np.arange(height) * 11 // height).astype(np.uint8)  # stuff classes 0..10
    semantic = np.repeat(band[:, None], width, axis=1)
    panoptic_truth = semantic.astype(np.int32)
    anomaly = np.zeros((height, width), np.uint8)
    for instance in range(1, 9):
        h, w = rng.integers(height // 40, height // 8), rng.integers(width // 40, width // 8)
        y, x = rng.integers(height // 10, height - h), rng.integers(0, width - w)
        if instance <= 5:
            cls = int(rng.choice(THING_IDS))
            semantic[y : y + h, x : x + w] = cls
            panoptic_truth[y : y + h, x : x + w] = cls * 1000 + instance
        else:
            semantic[y : y + h, x : x + w] = 254
            anomaly[y : y + h, x : x + w] = 1
            panoptic_truth[y : y + h, x : x + w] = 254_000 + instance
    top = height // 10
    anomaly[:top] = 255
    semantic[:top] = 255
    panoptic_truth[:top] = 255
    shift = (int(rng.integers(-3, 4)), int(rng.integers(-3, 4)))
    prediction = np.roll(np.where(semantic >= NUM_CLASSES, 0, semantic), shift, axis=(0, 1)).astype(np.uint8)
    panoptic_prediction = np.roll(panoptic_truth, shift, axis=(0, 1))
    panoptic_prediction[:top] = 0
    scores = rng.random((height, width), dtype=np.float32)
    scores += np.float32(0.5) * (anomaly == 1)
    return Sample(scores, anomaly, prediction, semantic, panoptic_prediction, panoptic_truth)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(images: int, height: int, width: int, metrics: tuple[str, ...], seed: int) -> dict[str, object]:
    """Stream ``images`` synthetic images through ``metrics``; run in a fresh process."""
    classes = tuple(ClassInfo(f"class{i}", i in THING_IDS, (0, 0, 0)) for i in range(NUM_CLASSES))
    pixel = PixelAnomalyAccumulator()
    components = ComponentAccumulator(threshold=0.75, settings=ANOMALY_TRACK)
    semantic = OpenSetAccumulator(NUM_CLASSES, threshold=0.75)
    panoptic = PanopticAccumulator(classes)
    goss = GossAccumulator(classes)
    updates: dict[str, Callable[[Sample], None]] = {
        "pixel": lambda s: pixel.update(s.scores, s.anomaly),
        "component": lambda s: components.update(s.scores, s.anomaly),
        "semantic": lambda s: semantic.update(s.prediction, s.scores, s.semantic),
        "panoptic": lambda s: panoptic.update(s.panoptic_prediction, s.panoptic_truth),
        "goss": lambda s: goss.update(s.panoptic_prediction, s.panoptic_truth),
    }
    seconds = dict.fromkeys(metrics, 0.0)
    generation = 0.0
    after_imports = _peak_rss_mb()
    first_image = None
    for index in range(images):
        start = time.perf_counter()
        sample = synthetic_sample(np.random.default_rng((seed, index)), height, width)
        generation += time.perf_counter() - start
        for metric in metrics:
            start = time.perf_counter()
            updates[metric](sample)
            seconds[metric] += time.perf_counter() - start
        if first_image is None:
            first_image = _peak_rss_mb()  # imports + one image's data and temporaries
        del sample
    report: dict[str, object] = {
        "images": images,
        "imports_rss_mb": after_imports,
        "first_image_rss_mb": first_image,
        "peak_rss_mb": _peak_rss_mb(),
        "generation_ms": 1000 * generation / images,
        "ms_per_image": {metric: 1000 * seconds[metric] / images for metric in metrics},
    }
    if "pixel" in metrics:
        result = pixel.result()
        report.update(
            table_rows=int(pixel._keys.size),
            mantissa_bits=result.mantissa_bits,
            ap=result.ap,
            fpr95=result.fpr95,
            fpr95_interpolated=result.fpr95_interpolated,
        )
    return report


def run(args: argparse.Namespace) -> int:
    if min(args.images) < 1 or args.height < 64 or args.width < 64:
        raise AnomaskError("--images must be >= 1 and --height/--width >= 64")
    metrics = tuple(dict.fromkeys(args.metrics))
    print(
        f"streaming metrics on synthetic {args.width}x{args.height} maps: {', '.join(metrics)} (one fresh process "
        f"per size)"
    )
    header = (
        f"{'images':>7} {'pooled GB':>9} {'imports MB':>10} {'1st image MB':>12} {'peak RSS MB':>11} "
        + " ".join(f"{m + ' ms':>12}" for m in metrics)
        + f" {'data ms':>8}"
    )
    if "pixel" in metrics:
        header += f" {'table rows':>10} {'mantissa':>8}"
    print(header, flush=True)
    context = multiprocessing.get_context(START_METHOD)
    rows = []
    for images in args.images:
        with context.Pool(1) as pool:
            report = pool.apply(measure, (images, args.height, args.width, metrics, args.seed))
        rows.append(report)
        pooled_gb = images * args.height * args.width * 5 / 1e9
        line = (
            f"{images:>7} {pooled_gb:>9.2f} {report['imports_rss_mb']:>10.0f} "
            f"{report['first_image_rss_mb']:>12.0f} {report['peak_rss_mb']:>11.0f} "
        )
        line += " ".join(f"{report['ms_per_image'][m]:>12.1f}" for m in metrics) + f" {report['generation_ms']:>8.1f}"
        if "pixel" in metrics:
            line += f" {report['table_rows']:>10} {report['mantissa_bits']:>8}"
        print(line, flush=True)
        if "pixel" in metrics:
            gap = report["fpr95"] - report["fpr95_interpolated"]
            print(
                f"{'':>7} AP {report['ap']:.6f}  FPR95 {report['fpr95']:.8f}  interpolated (papers' code) "
                f"{report['fpr95_interpolated']:.8f}  gap {gap:.2e}",
                flush=True,
            )
    if args.out:
        results = {"height": args.height, "width": args.width, "metrics": list(metrics), "rows": rows}
        write_result(args.out, "eval", args, results)
    return 0
