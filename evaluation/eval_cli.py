"""``anomask eval``: a thin wrapper over ``anomask.evaluation.evaluate.evaluate``.

anomask eval runs/closed/closed-set/final/model.safetensors --out eval/closed
anomask eval model.safetensors --dataset synthetic --scores eam msp rba --out eval/synth
anomask eval model.safetensors --scores msp+refined eam uno rba --protocol official --out eval/official
anomask eval model.onnx --dataset fishyscapes-lostandfound=/data/fs_laf --out eval/fs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from anomask.evaluation.eval_data import TASKS
from anomask.evaluation.evaluate import EvalSettings, evaluate
from anomask.evaluation.predictors import parse_size
from anomask.evaluation.readers import BENCHMARKS
from anomask.evaluation.thresholds import AUTO
from anomask.files import require_writable_dir
from anomask.models.heads import OpenPanopticConfig
from anomask.models.heads.official import PROTOCOLS
from anomask.models.panoptic_methods import OPEN_SET_METHODS
from anomask.threads import set_torch_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="checkpoint (.safetensors) or exported model (.onnx, .engine, .plan)")
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME=ROOT[,KEY=VALUE]",
        help=f"dataset to evaluate (repeatable); NAME one of {', '.join(BENCHMARKS)}, or synthetic[=ROOT] "
        "(its val split for mIoU and anomaly split for the rest). Default: the synthetic default",
    )
    parser.add_argument(
        "--scores",
        nargs="+",
        metavar="SCORE",
        help="anomaly scores (heads names, '+refined' for the refinement mask, e.g. eam msp eam+refined); "
        "default: every score the model supports, its own first. An exported model has only its fused score",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder: report.md, metrics.json, plots/")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=list(TASKS),
        help="tasks to score where the data allow (default: all)",
    )
    parser.add_argument(
        "--thresholds",
        default=AUTO,
        metavar="auto|halves|checkpoint|NAME=ROOT",
        help="open-set threshold at 95 %% TPR: 'auto' (default: per score the checkpoint's <score>@tpr95 when the "
        "metadata records calibration images that are not evaluated here, else halves), 'halves' (each half of a "
        "dataset at the other half's threshold), 'checkpoint' (the stored thresholds, always) or a dataset spec "
        "to calibrate on",
    )
    parser.add_argument(
        "--size",
        default="native",
        metavar="native|HxW",
        help="checkpoints: 'native' pads each image to a multiple of 32 like the training validation (default); "
        "HxW resizes it for the network like the deployed graph",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="anomask",
        help="checkpoints: 'anomask' (default: the fast deployment path, scores upsampled) or 'official' (each "
        "method's official inference: masks upsampled first, Mask2Anomaly's flip averaging and refinement rules; "
        "reproduces the published tables, slower; docs/evaluation.md)",
    )
    parser.add_argument(
        "--panoptic-methods",
        nargs="*",
        choices=OPEN_SET_METHODS,
        default=list(OPEN_SET_METHODS),
        help="open-set panoptic methods besides the closed-set baseline (default: all; the first is shown in panels)",
    )
    parser.add_argument(
        "--min-area",
        type=int,
        default=OpenPanopticConfig.min_area,
        help="smallest unknown instance in pixels for open-set panoptic (default %(default)s, sized for 1024x2048)",
    )
    parser.add_argument("--panels", type=int, default=4, help="qualitative panels per dataset (default %(default)s)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images of each dataset")
    parser.add_argument(
        "--device", default="cpu", help="cpu (default) or cuda[:N] (checkpoints; ONNX Runtime picks CUDA when not cpu)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's); 1 is fastest on a busy shared CPU"
    )
    parser.add_argument(
        "--tmp-dir", help="folder for the per-image maps kept between the two passes (default: inside --out)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    require_writable_dir(args.out, "--out")
    if args.tmp_dir:
        require_writable_dir(args.tmp_dir, "--tmp-dir")
    set_torch_threads(args.threads)
    settings = EvalSettings(
        tasks=tuple(args.tasks),
        thresholds=args.thresholds,
        limit=args.limit,
        panels=args.panels,
        panoptic_methods=tuple(args.panoptic_methods),
        panoptic=OpenPanopticConfig(min_area=args.min_area),
        progress=not args.no_progress,
        tmp_dir=args.tmp_dir,
    )
    command = args.command_line
    metrics = evaluate(
        args.model,
        args.dataset or None,
        args.scores,
        args.out,
        settings=settings,
        size=parse_size(args.size),
        device=args.device,
        command=command,
        protocol=args.protocol,
    )
    timing = metrics["timing"]
    print(
        f"wrote {args.out / 'report.md'} and metrics.json: {timing['images']} images, "
        f"{timing['network_and_heads_ms_per_image']:.1f} ms/image network + heads, {timing['total_s']:.1f} s in all"
    )
    return 0
