"""The ``anomask`` command line: one entry point, subcommands imported on demand.

Each subcommand lives in the package that owns it, as a module exposing
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``anomask --help`` stays fast and a missing optional extra (TensorRT)
never breaks unrelated commands.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from dataclasses import dataclass

from anomask import __version__
from anomask.errors import AnomaskError


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("convert", "anomask.models.convert_cli", "import Hugging Face, detectron2 or torchvision weights"),
    Command("data", "anomask.training.data_cli", "generate the synthetic default, dataset statistics"),
    Command("train", "anomask.training.train_cli", "train or fine-tune with a recipe"),
    Command("eval", "anomask.evaluation.eval_cli", "evaluate a checkpoint or exported model, write a report"),
    Command("export", "anomask.export.export_cli", "export ONNX with fused heads, build TensorRT engines"),
    Command("bag", "anomask_ros.bag.cli", "write, play, record and evaluate rosbag2 files"),
    Command("demo", "anomask.demo.cli", "the whole journey on the embedded synthetic default"),
)

BENCHMARKS: tuple[Command, ...] = (
    Command("model", "anomask.bench.model", "network forward latency and peak memory"),
    Command("heads", "anomask.bench.heads", "cost of the fused heads relative to the forward"),
    Command("runtime", "anomask.bench.runtime", "per-stage latency of every runtime backend"),
    Command("node", "anomask.bench.node", "publisher -> node -> subscriber latency and overhead"),
    Command("transport", "anomask.bench.transport", "camera frames of each size delivered per input QoS"),
    Command("eval", "anomask.bench.eval", "streaming metric memory and speed"),
    Command("int8", "anomask.bench.int8", "INT8 Q/DQ of a checkpoint: calibration memory, agreement with fp32"),
    Command("quality", "anomask.bench.quality.cli", "the papers' findings on the synthetic default"),
    Command("tables", "anomask.bench.tables", "rewrite the docs' benchmark tables from docs/results/*.json"),
)


def _first_word(argv: list[str]) -> str | None:
    return next((word for word in argv if not word.startswith("-")), None)


def _add_lazy(subparsers: argparse._SubParsersAction, command: Command, selected: str | None) -> None:
    parser = subparsers.add_parser(command.name, help=command.help, description=command.help)
    parser.set_defaults(_module=command.module)
    # Only the command being run imports its module (for its arguments and its code).
    if command.name == selected:
        importlib.import_module(command.module).add_arguments(parser)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomask", description="anomask: outlier-aware segmentation, from the workstation to the car"
    )
    parser.add_argument("--version", action="version", version=f"anomask {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    selected = _first_word(argv)
    for command in COMMANDS:
        _add_lazy(subparsers, command, selected)
    bench = subparsers.add_parser("bench", help="benchmarks: print numbers, assert nothing")
    bench_sub = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    bench_selected = _first_word(argv[argv.index(selected) + 1 :]) if selected == "bench" else None
    for command in BENCHMARKS:
        _add_lazy(bench_sub, command, bench_selected)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # Importing a command's module may fail clearly too (e.g. no ONNX Runtime installed).
        args = build_parser(argv).parse_args(argv)
        # What a command records as "the command that made this" (checkpoint and report
        # metadata): the argv it was given, also when main(argv) runs inside another program.
        args.command_line = shlex.join(["anomask", *argv])
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except AnomaskError as error:
        print(f"anomask: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("anomask: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
