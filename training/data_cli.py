"""``anomask data``: generate the synthetic default, print statistics, draw a contact sheet.

```
anomask data synth --out DIR [--seed 0] [--train 200] [--val 50] [--test 50] [--anomaly-val 30] [--size 256x512]
anomask data stats DIR [--limit N]
anomask data sheet DIR --out PNG [--frames 2] [--width 256]
```
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from anomask.files import require_writable_dir, require_writable_file


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH such as 256x512, not {text!r}") from None
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    synth = actions.add_parser(
        "synth", help="write the synthetic driving dataset (Cityscapes layout + anomaly test and validation splits)"
    )
    synth.add_argument("--out", type=Path, required=True, help="output folder (empty, or an earlier synthetic dataset)")
    synth.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    synth.add_argument("--train", type=int, default=200, help="training frames (default 200)")
    synth.add_argument("--val", type=int, default=50, help="validation frames (default 50)")
    synth.add_argument("--test", type=int, default=50, help="anomaly test frames (default 50)")
    synth.add_argument(
        "--anomaly-val",
        type=int,
        default=30,
        help="anomaly validation frames, seen objects only: anomask train calibrates and selects on them (default 30)",
    )
    synth.add_argument("--size", type=parse_size, default=(256, 512), help="HEIGHTxWIDTH (default 256x512)")
    stats = actions.add_parser("stats", help="class frequencies, instances and anomaly sizes of a dataset folder")
    stats.add_argument("root", type=Path, help="dataset folder (Cityscapes layout and/or anomaly/)")
    stats.add_argument("--limit", type=int, default=None, help="read at most N frames per split")
    sheet = actions.add_parser("sheet", help="save a contact sheet of frames with their labels")
    sheet.add_argument("root", type=Path, help="dataset folder")
    sheet.add_argument("--out", type=Path, required=True, help="PNG to write")
    sheet.add_argument("--frames", type=int, default=2, help="frames per split (default 2)")
    sheet.add_argument("--width", type=int, default=256, help="width of each tile in pixels (default 256)")


def _synth(args: argparse.Namespace) -> int:
    from anomask.training.data.synthetic import SynthConfig, generate

    require_writable_dir(args.out, "--out")
    height, width = args.size
    config = SynthConfig(args.seed, args.train, args.val, args.test, height, width, args.anomaly_val)
    mark = [time.perf_counter()]

    def progress(split: str, done: int, total: int) -> None:
        if done == total:
            now = time.perf_counter()
            print(f"{split}: {total} frames in {now - mark[0]:.1f} s", flush=True)
            mark[0] = now

    begin = time.perf_counter()
    generate(args.out, config, progress)
    frames = config.train + config.val + config.test + config.anomaly_val
    seconds = time.perf_counter() - begin
    print(
        f"wrote {frames} frames of {height}x{width} to {args.out} in {seconds:.1f} s ({frames / seconds * 60:.0f} "
        f"frames/min)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_action == "synth":
        return _synth(args)
    if args.data_action == "stats":
        from anomask.training.data.stats import collect, format_stats

        print(format_stats(*collect(args.root, args.limit)))
        return 0
    from anomask.training.data.sheet import contact_sheet

    require_writable_file(args.out, "--out")
    sheet = contact_sheet(args.root, args.out, args.frames, args.width)
    print(f"wrote {args.out} ({sheet.shape[0]}x{sheet.shape[1]} px)")
    return 0
