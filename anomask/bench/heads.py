"""``anomask bench heads``: cost of each inference head relative to the network forward.

Runs the network once per repeat on a random image of the output size, then each head on
its real outputs, upsampled to the same size, on the same device; prints milliseconds and
the ratio to the forward, for both upsampling modes of ``FusedHeads`` (see
``anomask.models.heads.fused``), the CPU post-processing, and how well the fast mode agrees
with the exact one. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError
from anomask.models import ModelConfig, build_model, load_checkpoint
from anomask.models.heads import (
    ANOMALY_SCORES,
    UPSAMPLE_MODES,
    FusedHeads,
    closed_set_semantic,
    gather_evidence,
    goss_images,
    panoptic_fields,
    panoptic_images,
    refinement_class_filter,
    resize_fields,
    upsample_mask_logits,
)
from anomask.models.heads.refinement import claim_logit
from anomask.models.heads.scores import evidence_for
from anomask.models.metadata import ClassInfo, ModelMetadata
from anomask.models.panoptic_methods import PANOPTIC_METHODS

TARGET = 0.05
"""All fused heads together should cost at most 5 % of the network forward."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default="cityscapes",
        choices=("cityscapes", "small"),
        help="network preset, randomly initialised (default: cityscapes, R50, 100 queries)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="time a trained checkpoint instead of --preset (its masks make the agreement "
        "between the two upsampling modes meaningful)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(1024, 2048),
        metavar=("H", "W"),
        help="input and output size (default: 1024 2048)",
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda[:i]")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs per item; the fastest is printed (least disturbed by other load)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per item first")
    parser.add_argument(
        "--clock",
        default="auto",
        choices=("auto", "wall", "cpu"),
        help="wall: elapsed time; cpu: this process's CPU time, all threads (stable on a "
        "shared CPU machine); auto: wall on CUDA, cpu on the CPU",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=list(UPSAMPLE_MODES),
        choices=UPSAMPLE_MODES,
        help="FusedHeads upsampling modes to time (default: both)",
    )
    parser.add_argument(
        "--scores",
        nargs="+",
        default=sorted(set(ANOMALY_SCORES) - {"aem"}),
        help="anomaly scores to time one by one (default: all)",
    )
    add_out_argument(parser)


def _metadata(config: ModelConfig) -> ModelMetadata:
    """Cityscapes-like classes for a preset: the first 11/19 stuff, the rest things."""
    classes = tuple(
        ClassInfo("road" if k == 0 else f"class{k}", k >= 11 * config.num_classes // 19, (0, 0, 0))
        for k in range(config.num_classes)
    )
    return ModelMetadata(classes=classes, architecture=config)


def _timer(device: torch.device, repeats: int, warmup: int, clock: str) -> Callable[[Callable[[], object]], float]:
    now = time.process_time if clock == "cpu" else time.perf_counter

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def measure(fn: Callable[[], object]) -> float:
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            start = now()
            fn()
            sync()
            times.append((now() - start) * 1000.0)
        return min(times)

    return measure


def _head_closures(
    metadata: ModelMetadata,
    logits: torch.Tensor,
    masks: torch.Tensor,
    size: tuple[int, int],
    mode: str,
    scores: list[str],
) -> dict[str, Callable[[], object]]:
    """Each head alone, as ``FusedHeads`` computes it in ``mode``."""
    k = metadata.num_classes

    def working() -> torch.Tensor:
        return upsample_mask_logits(masks, size) if mode == "masks" else masks

    def finish(fields: torch.Tensor) -> torch.Tensor:
        return resize_fields(fields, size) if mode == "scores" else fields

    def semantic() -> object:
        return closed_set_semantic(finish(gather_evidence(logits, working(), k).class_scores))

    def score(name: str) -> Callable[[], object]:
        spec = ANOMALY_SCORES[name]
        return lambda: finish(spec.pixel(evidence_for(spec, logits, working(), k)).unsqueeze(1))

    lut = torch.zeros(metadata.architecture.num_outputs, dtype=torch.bool, device=logits.device)
    lut[metadata.refinement_ids()] = True

    def refinement() -> object:
        class_filter = refinement_class_filter(logits.softmax(-1), lut, 0.95)
        return finish(claim_logit(working(), class_filter).unsqueeze(1)) > 0

    def panoptic() -> object:
        mask_logits = working()
        fields = panoptic_fields(logits.softmax(-1), mask_logits, mask_logits.sigmoid(), k, 0.8)
        continuous = torch.stack([fields.best, fields.winner_logit], 1)
        if mode == "scores":
            continuous = resize_fields(continuous, size)
            resize_fields(fields.mask_id.unsqueeze(1).float(), size, discrete=True)
        return continuous

    heads = {"semantic": semantic, "refinement mask": refinement, "panoptic fields": panoptic}
    heads.update({f"anomaly: {name}": score(name) for name in scores})
    return heads


def _voronoi_outputs(
    num_masks: int, num_outputs: int, num_classes: int, height: int, width: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sharp, trained-looking outputs: each mask owns one Voronoi cell (logit +8 inside, -8
    outside) and is confident (logit +6) in one random known class."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(num_masks, 2, generator=generator) * torch.tensor([height, width])
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pixels = torch.stack([rows, cols], -1).reshape(-1, 1, 2).float()
    owner = (pixels - centres).square().sum(-1).argmin(-1).reshape(height, width)
    cells = owner.unsqueeze(0) == torch.arange(num_masks).view(-1, 1, 1)
    masks = torch.where(cells, 8.0, -8.0).unsqueeze(0)
    logits = torch.zeros(1, num_masks, num_outputs)
    logits[0, torch.arange(num_masks), torch.randint(num_classes, (num_masks,), generator=generator)] = 6.0
    return logits.to(device), masks.to(device)


def _agreement(metadata: ModelMetadata, logits: torch.Tensor, masks: torch.Tensor, size: tuple[int, int]) -> str:
    outputs = [
        FusedHeads(metadata, score="eam", output_size=size, upsample=mode).to(logits.device)(
            logits, masks, torch.tensor(-0.5, device=logits.device)
        )
        for mode in UPSAMPLE_MODES
    ]
    fast, exact = ({name: value.cpu() for name, value in out.items()} for out in outputs)
    same = {name: float((fast[name] == exact[name]).float().mean()) for name in ("semantic", "open_set", "mask_id")}
    spread = float(exact["anomaly"].max() - exact["anomaly"].min())
    error = float((fast["anomaly"] - exact["anomaly"]).abs().mean())
    pan_fast, pan_exact = panoptic_images(fast, metadata), panoptic_images(exact, metadata)
    return (
        f"scores vs masks mode: semantic {100 * same['semantic']:.2f} % equal, open_set "
        f"{100 * same['open_set']:.2f} %, mask_id {100 * same['mask_id']:.2f} %, panoptic "
        f"{100 * float((pan_fast == pan_exact).mean()):.2f} %; eam mean |diff| {error:.4f} "
        f"({100 * error / max(spread, 1e-12):.2f} % of its range)"
    )


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.warmup < 0:
        raise AnomaskError("--repeats must be at least 1 and --warmup at least 0")
    unknown = sorted(set(args.scores) - set(ANOMALY_SCORES))
    if unknown:
        raise AnomaskError(f"unknown anomaly scores {', '.join(unknown)}; valid: {', '.join(ANOMALY_SCORES)}")
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    size = (int(args.size[0]), int(args.size[1]))
    if size[0] % 32 or size[1] % 32:
        raise AnomaskError(f"--size {size[0]} {size[1]}: both must be multiples of 32")
    if args.checkpoint:
        model, metadata = load_checkpoint(args.checkpoint)
        if metadata.architecture.meta_arch != "mask2former":
            raise AnomaskError(
                f"{args.checkpoint}: the fused heads need a mask2former model, not {metadata.architecture.meta_arch}"
            )
    else:
        torch.manual_seed(0)
        model = build_model(ModelConfig.preset(args.preset))
        metadata = _metadata(model.config)
    scores = [
        name for name in args.scores if metadata.architecture.negative_class or not ANOMALY_SCORES[name].needs_negative
    ]
    skipped = sorted(set(args.scores) - set(scores))
    clock = args.clock if args.clock != "auto" else ("wall" if device.type == "cuda" else "cpu")
    measure = _timer(device, args.repeats, args.warmup, clock)
    measure_cpu = _timer(torch.device("cpu"), args.repeats, args.warmup, clock)
    model = model.eval().to(device)
    image = torch.randn(1, 3, *size, device=device)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    print(
        f"device {device}{f' ({threads} threads)' if threads else ''}, model "
        f"{args.checkpoint or 'preset ' + args.preset}, "
        f"size {size[0]}x{size[1]}, {clock} clock, best of {args.repeats} after {args.warmup} warm-up"
    )
    with torch.inference_mode():
        outputs: dict = {}
        forward_ms = measure(lambda: outputs.update(model(image)))
        logits, masks = outputs["pred_logits"], outputs["pred_masks"]
        print(f"network forward: {forward_ms:.1f} ms (pred_masks {list(masks.shape)})")
        print(f"{'head':28s} {'mode':7s} {'ms':>10s} {'% forward':>10s}")
        rows: list[dict[str, object]] = []

        def timed(name: str, mode: str, ms: float) -> None:
            rows.append({"head": name, "mode": mode, "ms": ms, "percent_of_forward": 100 * ms / forward_ms})
            print(f"{name:28s} {mode:7s} {ms:10.1f} {100 * ms / forward_ms:10.2f}")

        fused_ratio: dict[str, float] = {}
        for mode in args.modes:
            for name, fn in _head_closures(metadata, logits, masks, size, mode, scores).items():
                timed(name, mode, measure(fn))
            heads = FusedHeads(metadata, score="eam", refine=True, output_size=size, upsample=mode).to(device)
            threshold = torch.tensor(-0.5, device=device)
            ms = measure(lambda: heads(logits, masks, threshold))
            fused_ratio[mode] = ms / forward_ms
            timed("ALL fused heads (eam+refine)", mode, ms)
        arrays = {name: value.cpu().numpy() for name, value in heads(logits, masks, threshold).items()}
        for method in PANOPTIC_METHODS:
            ms = measure_cpu(lambda: panoptic_images(arrays, metadata, method))
            timed(f"CPU panoptic: {method}", "cpu", ms)
        timed("CPU GOSS", "cpu", measure_cpu(lambda: goss_images(arrays)))
        if set(UPSAMPLE_MODES) <= set(args.modes):
            print("network masks: " + _agreement(metadata, logits, masks, size))
            sharp = _voronoi_outputs(
                masks.shape[1], logits.shape[2], metadata.num_classes, masks.shape[2], masks.shape[3], device
            )
            print("sharp Voronoi masks: " + _agreement(metadata, *sharp, size))
    if skipped:
        print(f"not timed (need a K+2 model; each costs what eam costs): {', '.join(skipped)}")
    for mode, ratio in fused_ratio.items():
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(
            f"target all fused heads <= {100 * TARGET:.0f} % of the forward, {mode} mode: {verdict} "
            f"({100 * ratio:.2f} %)"
        )
    if args.out:
        results = {
            "model": args.checkpoint or f"preset {args.preset}",
            "device": str(device),
            "size": list(size),
            "clock": clock,
            "forward_ms": forward_ms,
            "rows": rows,
            "target_percent": 100 * TARGET,
            "skipped": skipped,
        }
        write_result(args.out, "heads", args, results)
    return 0
