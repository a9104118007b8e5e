"""``anomask demo``: the whole journey on the embedded synthetic default, on the CPU.

```
anomask demo [--out demo_out] [--force | --from STAGE] [--size 256x512] [--closed-set-iterations N] ...
```

Stages, each in ``OUT/<stage>/`` with a completion marker (``anomask.demo.stages``), so a
rerun skips what finished:

- data: synthetic default (train, val, anomaly test, anomaly val); API: ``training.data.synthetic.generate``
- train: small preset, UNO recipe: closed-set stage, then the K+2 fine-tune; API:
  ``training.recipe_runner.run_recipe``
- evaluate: checkpoint on the val and anomaly test splits, every score; API: ``evaluation.evaluate.evaluate``
- export: ONNX with the fused UNO score (+ TensorRT engine when a GPU and TensorRT are present); API:
  ``export.onnx_export.export_onnx``
- bag: rosbag2 of the test split's unseen-anomaly frames with ground truth, at a camera rate; API:
  ``anomask_ros.bag.write.write_bag``
- offline: the node's code on the bag without ROS: time per frame -> replay rate; API:
  ``anomask_ros.bag.eval_cli.evaluate_bag``
- replay: the real node process, player and recorder; API: ``anomask_ros.bag.replay.run_replay``
- bag_eval: recorded outputs against the bag's ground truth; API: ``anomask_ros.bag.eval_cli.evaluate_bag``
- report: ``OUT/report.md``: metrics, latency, frames; API: ``anomask.demo.report``

The training runs as long as the recipe's small preset says (``preset_iterations``), with
the settings of ``TRAIN_SETTINGS``; options override both.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import shlex
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anomask.demo.stages import DEMO_FILE, Stage, StageContext, check_output_folder, run_stages
from anomask.errors import AnomaskError
from anomask.evaluation.output_files import write_json
from anomask.export.export_info import GPU_INSTALL

RECIPE = "uno"
PRESET = "small"
CLOSED_SET, FINETUNE = "closed-set", "finetune"
"""The recipe's two stages."""
TRAIN_SETTINGS: tuple[str, ...] = ("validation.every=0",)
"""``--set`` overrides of the demo's training: validate once, at the end of each stage (the
final model is what the demo uses; the end-of-fine-tune validation calibrates the
``uno@tpr95`` threshold the node runs with)."""
NETWORK_SCALE = 0.5
"""Network resolution relative to the frames: the small preset trains on frames resized by
0.375-0.75 and validates at 0.5, so evaluation and the exported graph run at half size."""
CAMERA = "camera"
CAMERA_RATE_HZ = 10.0
REPLAY_SAFETY = 4.0
"""The replay leaves the node this many times its slowest offline time per frame, since in
the replay it also builds and publishes its messages and shares the CPU with the player and
the recorder (at 3x the p99, an idle machine still dropped 1 of 25 frames)."""


@dataclass(frozen=True)
class DemoSettings:
    seed: int = 0
    size: tuple[int, int] = (256, 512)
    train_frames: int = 200
    val_frames: int = 50
    test_frames: int = 50
    anomaly_val_frames: int = 30
    closed_set_iterations: int | None = None
    """None: the small preset's (``preset_iterations``); likewise ``uno_iterations``."""
    uno_iterations: int | None = None
    train_settings: tuple[str, ...] = TRAIN_SETTINGS
    """``[STAGE:]KEY=VALUE`` training overrides (``anomask train --set``)."""
    eval_scores: tuple[str, ...] | None = None
    """None: every score the model has, its own first."""
    panels: int = 3
    """Qualitative panels of the evaluation and frames shown in the report."""
    camera_rate_hz: float = CAMERA_RATE_HZ
    bag_frames: int | None = None
    """Frames in the bag (None: every unseen-anomaly test frame)."""
    replay_rate: float | None = None
    """Play-rate factor; None: chosen from the offline time per frame."""
    threads: int = 0
    """Torch threads and the node's ONNX Runtime threads; 0: ``auto_threads()``."""
    device: str = "auto"
    progress: bool = True

    @property
    def network_size(self) -> tuple[int, int]:
        return tuple(max(32, round(side * NETWORK_SCALE / 32) * 32) for side in self.size)  # type: ignore[return-value]


# -- the stages ----------------------------------------------------------------------------
@dataclass
class Demo:
    """The stage functions of one demo run; paths in summaries are relative to ``out``."""

    out: Path
    settings: DemoSettings
    device: str = field(init=False)
    threads: int = field(init=False)
    """Resolved ``settings.threads`` (0: the libraries' defaults)."""
    closed_set_iterations: int = field(init=False)
    uno_iterations: int = field(init=False)
    """Resolved ``settings.closed_set_iterations`` / ``uno_iterations``."""

    def __post_init__(self) -> None:
        self.device = resolve_device(self.settings.device)
        self.threads = self.settings.threads or auto_threads()
        preset = preset_iterations()
        s = self.settings
        self.closed_set_iterations = preset[CLOSED_SET] if s.closed_set_iterations is None else s.closed_set_iterations
        self.uno_iterations = preset[FINETUNE] if s.uno_iterations is None else s.uno_iterations

    def path(self, relative: str) -> Path:
        return self.out / relative

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))

    @property
    def data_root(self) -> Path:
        return self.out / "data"

    # data ----------------------------------------------------------------------------
    def data(self, ctx: StageContext) -> dict[str, Any]:
        from anomask.training.data.synthetic import SynthConfig, generate

        s = self.settings
        config = SynthConfig(
            seed=s.seed,
            train=s.train_frames,
            val=s.val_frames,
            test=s.test_frames,
            height=s.size[0],
            width=s.size[1],
            anomaly_val=s.anomaly_val_frames,
        )
        generate(ctx.folder, config, _split_progress(ctx.log))
        return {"root": self.rel(ctx.folder), "frames": asdict(config)}

    # train ---------------------------------------------------------------------------
    def train_overrides(self) -> dict[str, dict[str, Any]]:
        from anomask.training.config import deep_update, parse_overrides

        s = self.settings
        base = {
            "*": {"seed": s.seed, "data": {"dataset": str(self.data_root.resolve())}},
            CLOSED_SET: {"solver": {"iterations": self.closed_set_iterations}},
            FINETUNE: {"solver": {"iterations": self.uno_iterations}},
        }
        extra = parse_overrides(list(s.train_settings))
        return {key: deep_update(base.get(key, {}), extra.get(key, {})) for key in {**base, **extra}}

    def train_command(self, folder: Path) -> str:
        """The ``anomask train`` command that does what this stage does (in the metadata)."""
        s = self.settings
        words = [
            "anomask",
            "train",
            "--recipe",
            RECIPE,
            "--preset",
            PRESET,
            "--out",
            str(folder),
            "--seed",
            str(s.seed),
            "--set",
            f"data.dataset={self.data_root.resolve()}",
            "--set",
            f"{CLOSED_SET}:solver.iterations={self.closed_set_iterations}",
            "--set",
            f"{FINETUNE}:solver.iterations={self.uno_iterations}",
            "--device",
            self.device,
        ]
        for item in s.train_settings:
            words += ["--set", item]
        return shlex.join(words)

    def train(self, ctx: StageContext) -> dict[str, Any]:
        import json

        import torch

        from anomask.training.recipe_runner import RUN_FILE, RunSpec, run_recipe
        from anomask.training.recipes import load_recipe

        spec = RunSpec(RECIPE, PRESET, self.train_overrides(), None)
        run_file = ctx.folder / RUN_FILE
        resume = not ctx.forced and run_file.is_file() and RunSpec.read(run_file) == spec
        if resume:
            ctx.log(f"train: continuing the interrupted run in {ctx.folder} from its newest checkpoint")
        else:
            _empty(ctx.folder)
        recipe = load_recipe(spec.recipe, spec.preset, spec.overrides)
        run_recipe(
            spec,
            ctx.folder,
            torch.device(self.device),
            self.train_command(ctx.folder),
            resume=resume,
            progress=self.settings.progress,
        )
        stages = {}
        for stage in recipe.stages:
            summary_file = ctx.folder / stage.name / "final" / "summary.json"
            stages[stage.name] = json.loads(summary_file.read_text())
            # Checkpoints only serve to resume an interrupted training (model, optimizer
            # state: ~530 MB for the two stages); best/ and final/ stay.
            shutil.rmtree(ctx.folder / stage.name / "checkpoints", ignore_errors=True)
        final = ctx.folder / recipe.stages[-1].name / "final" / "model.safetensors"
        return {"model": self.rel(final), "stages": stages, "command": self.train_command(ctx.folder)}

    # evaluate ------------------------------------------------------------------------
    def evaluate(self, ctx: StageContext) -> dict[str, Any]:
        from anomask.evaluation.eval_data import synthetic_datasets
        from anomask.evaluation.evaluate import EvalSettings, evaluate

        model = self.path(ctx.summaries["train"]["model"])
        s = self.settings
        settings = EvalSettings(panels=s.panels, progress=s.progress)
        command = (
            f"anomask eval {model} --dataset synthetic={self.data_root} --size {_size_text(s.network_size)} "
            f"--out {ctx.folder}"
        )
        metrics = evaluate(
            model,
            synthetic_datasets(self.data_root),
            s.eval_scores,
            ctx.folder,
            settings=settings,
            size=s.network_size,
            device=self.device,
            command=command,
        )
        return {
            "report": self.rel(ctx.folder / "report.md"),
            "metrics": self.rel(ctx.folder / "metrics.json"),
            "score": metrics["model"]["primary_score"],
        }

    # export --------------------------------------------------------------------------
    def export(self, ctx: StageContext) -> dict[str, Any]:
        from anomask.export.export_cli import check_parity
        from anomask.export.export_info import ExportSettings
        from anomask.export.graph import build_heads
        from anomask.export.onnx_export import export_onnx
        from anomask.files import write_bytes_atomic
        from anomask.models import load_checkpoint

        checkpoint = self.path(ctx.summaries["train"]["model"])
        network, metadata = load_checkpoint(checkpoint)
        s = self.settings
        settings = ExportSettings(
            input_size=s.size, network_size=s.network_size, output_size=s.network_size, score=metadata.score
        )
        onnx_path = ctx.folder / "model.onnx"
        command = (
            f"anomask export {checkpoint} --out {onnx_path} --height {s.size[0]} --width {s.size[1]} "
            f"--network-size {s.network_size[0]} {s.network_size[1]} --score {metadata.score}"
        )
        ctx.log(
            f"export: {checkpoint.name} -> {onnx_path} (frames {_size_text(s.size)}, network "
            f"{_size_text(s.network_size)}, "
            f"score {metadata.score})"
        )
        export_onnx(network, build_heads(metadata, settings), metadata, settings, onnx_path, command=command)
        passed, parity = check_parity(onnx_path, network, metadata, settings, frames=2)
        write_bytes_atomic(ctx.folder / "parity.txt", (parity + "\n").encode())
        ctx.log(parity)
        if not passed:
            raise AnomaskError(
                f"{onnx_path}: ONNX Runtime and PyTorch disagree beyond the parity rules (see "
                f"{ctx.folder / 'parity.txt'})"
            )
        summary: dict[str, Any] = {
            "onnx": self.rel(onnx_path),
            "parity": passed,
            "score": metadata.score,
            "thresholds": dict(metadata.thresholds),
            "input_size": list(s.size),
            "network_size": list(s.network_size),
        }
        reason = tensorrt_unavailable()
        if reason is None:
            from anomask.export.tensorrt_builder import EngineOptions, ensure_engine

            summary["engine"] = self.rel(ensure_engine(onnx_path, EngineOptions(), log=ctx.log))
        else:
            ctx.log(f"export: no TensorRT engine: {reason}")
            summary["engine_skipped"] = reason
        return summary

    # bag -----------------------------------------------------------------------------
    def bag(self, ctx: StageContext) -> dict[str, Any]:
        from anomask.training.data.synthetic import ANOMALY_TEST, SyntheticAnomalyDataset
        from anomask_ros.bag.write import CameraSource, WriteOptions, write_bag

        test = SyntheticAnomalyDataset(self.data_root, ANOMALY_TEST)
        names = [name for index, name in enumerate(test.names) if test.group(index) == "unseen"][
            : self.settings.bag_frames
        ]
        if not names:
            raise AnomaskError(f"{test.folder}: no test frames with unseen anomalies (objects.json)")
        frames = ctx.folder / "frames"
        folders = {"images": "images", "semantic": "semantic", "anomaly": "labels_masks", "instances": "instances"}
        for kind, source in folders.items():
            (frames / kind).mkdir(parents=True)
            for name in names:
                _link_or_copy(test.folder / source / f"{name}.png", frames / kind / f"{name}.png")
        camera = CameraSource(CAMERA, frames / "images", frames / "semantic", frames / "anomaly", frames / "instances")
        bag = ctx.folder / "unseen"
        counts = write_bag(bag, [camera], WriteOptions(rate_hz=self.settings.camera_rate_hz))
        ctx.log(
            f"bag: {len(names)} unseen-anomaly frames at {self.settings.camera_rate_hz:g} Hz -> {bag} "
            f"({', '.join(f'{t} {n}' for t, n in counts.items())})"
        )
        return {"bag": self.rel(bag), "frames": len(names), "rate_hz": self.settings.camera_rate_hz, "topics": counts}

    # offline -------------------------------------------------------------------------
    def node_threshold(self, ctx: StageContext) -> str | None:
        """The calibrated threshold key the node runs with (``<score>@tpr95``), if the
        model has it; else the node's default ``anomaly_threshold``."""
        export = ctx.summaries["export"]
        key = f"{export['score']}@tpr95"
        return key if key in export["thresholds"] else None

    def offline(self, ctx: StageContext) -> dict[str, Any]:
        from anomask_ros.bag.eval_cli import evaluate_bag

        bag = self.path(ctx.summaries["bag"]["bag"])
        model = self.path(ctx.summaries["export"]["onnx"])
        key = self.node_threshold(ctx)
        result = evaluate_bag(bag, ctx.folder, model=model, calibrated_threshold=key, threads=self.threads)
        processing = result["processing_ms"]
        rate = self.settings.replay_rate or replay_rate(processing, self.settings.camera_rate_hz)
        ctx.log(
            f"offline: {result['frames_out']} frames, {processing['p50']:.0f} ms per frame (p99 "
            f"{processing['p99']:.0f} ms) "
            f"-> replay at rate {rate:g} ({self.settings.camera_rate_hz * rate:.2g} frames/s)"
        )
        return {
            "report": self.rel(ctx.folder / "report.md"),
            "metrics": self.rel(ctx.folder / "metrics.json"),
            "processing_ms": processing,
            "replay_rate": rate,
            "threshold_key": key,
            "threshold": result["threshold"],
        }

    # replay --------------------------------------------------------------------------
    def replay(self, ctx: StageContext) -> dict[str, Any]:
        from anomask_ros.bag.replay import run_replay

        bag = self.path(ctx.summaries["bag"]["bag"])
        model = self.path(ctx.summaries["export"]["onnx"])
        offline = ctx.summaries["offline"]
        parameters: dict[str, object] = {}
        if offline["threshold_key"]:
            parameters["calibrated_threshold"] = offline["threshold_key"]
        if self.threads:
            parameters["runtime_threads"] = self.threads
        # run_replay stops the recorder and the node with SIGINT. A demo started in the
        # background of a non-interactive shell (``cmd &``, nohup) has SIGINT ignored, and its
        # children would inherit that and never stop: they get the default handling back.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        run = run_replay(
            bag,
            model,
            ctx.folder / "recording",
            rate=offline["replay_rate"],
            parameters=parameters,
            logs=ctx.folder / "logs",
            log=ctx.log,
        )
        if run.node_status != 0:
            ctx.log(f"replay: the node exited with status {run.node_status} (see {run.logs / 'node.log'})")
        return {
            "recording": self.rel(run.recording),
            "logs": self.rel(run.logs),
            "frames_in": run.frames_in,
            "frames_out": run.frames_out,
            "rate": offline["replay_rate"],
            "node_status": run.node_status,
            "parameters": {k: v for k, v in run.parameters.items() if k != "model_path"},
        }

    # bag_eval ------------------------------------------------------------------------
    def bag_eval(self, ctx: StageContext) -> dict[str, Any]:
        from anomask_ros.bag.eval_cli import evaluate_bag
        from anomask_ros.bag.report import comparison_line

        bag = self.path(ctx.summaries["bag"]["bag"])
        model = self.path(ctx.summaries["export"]["onnx"])
        # The node's model and parameters run here too, on the frames the node answered.
        result = evaluate_bag(
            bag,
            ctx.folder,
            recording=self.path(ctx.summaries["replay"]["recording"]),
            model=model,
            calibrated_threshold=ctx.summaries["offline"]["threshold_key"],
            threads=self.threads,
            compare=True,
        )
        ctx.log(f"bag_eval: frames in {result['frames_in']}, out {result['frames_out']}, dropped {result['dropped']}")
        ctx.log(f"bag_eval: {comparison_line(result)}")
        return {
            "report": self.rel(ctx.folder / "report.md"),
            "metrics": self.rel(ctx.folder / "metrics.json"),
            "frames_in": result["frames_in"],
            "frames_out": result["frames_out"],
            "dropped": result["dropped"],
            "comparison": result["comparison"],
        }

    # report --------------------------------------------------------------------------
    def report(self, ctx: StageContext) -> dict[str, Any]:
        from anomask.demo.report import write_demo_report

        path = write_demo_report(
            self.out, ctx.folder, ctx.summaries, STAGE_NAMES, self.environment(), self.settings.panels
        )
        ctx.log(f"report: {path}")
        return {"report": self.rel(path)}

    def environment(self) -> dict[str, Any]:
        import torch

        return {
            "device": self.device,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "machine": platform.platform(),
            "ros_domain": os.environ.get("ROS_DOMAIN_ID"),
        }

    # the list --------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        from anomask.training.data.synthetic.writer import FORMAT_VERSION
        from anomask.training.recipes import SMALL_PRESET_ITERATION_S

        s = self.settings
        frames = s.train_frames + s.val_frames + s.test_frames + s.anomaly_val_frames
        pixels = s.size[0] * s.size[1] / (256 * 512)
        unseen = s.test_frames // 2 if s.bag_frames is None else min(s.bag_frames, s.test_frames // 2)
        iterations = self.closed_set_iterations + self.uno_iterations
        return [
            Stage(
                "data",
                "render the synthetic default",
                self.data,
                {
                    "seed": s.seed,
                    "size": s.size,
                    "frames": [s.train_frames, s.val_frames, s.test_frames, s.anomaly_val_frames],
                    "format": FORMAT_VERSION,
                },
                estimate_s=5 + 0.11 * frames * pixels,
            ),
            Stage(
                "train",
                f"train the {PRESET} preset with the {RECIPE} recipe ({self.closed_set_iterations} closed-set + "
                f"{self.uno_iterations} fine-tune iterations)",
                self.train,
                {
                    "iterations": [self.closed_set_iterations, self.uno_iterations],
                    "settings": s.train_settings,
                    "device": self.device,
                },
                estimate_s=20
                + SMALL_PRESET_ITERATION_S * iterations
                + 0.3 * (s.val_frames + s.anomaly_val_frames) * pixels,
                resumable=True,
            ),
            Stage(
                "evaluate",
                "evaluate the checkpoint on the val and anomaly test splits",
                self.evaluate,
                {"scores": s.eval_scores, "size": s.network_size, "panels": s.panels},
                estimate_s=10 + 0.5 * (s.val_frames + s.test_frames) * pixels,
            ),
            Stage(
                "export",
                "export ONNX with the fused score (TensorRT when available)",
                self.export,
                {"size": s.size, "network": s.network_size},
                estimate_s=40,
            ),
            Stage(
                "bag",
                "write a rosbag2 of the unseen-anomaly test frames",
                self.bag,
                {"rate": s.camera_rate_hz, "frames": s.bag_frames},
                estimate_s=3,
            ),
            Stage(
                "offline",
                "run the node's code on the bag without ROS (time per frame)",
                self.offline,
                {"threads": s.threads, "rate": s.replay_rate},
                estimate_s=10 + 0.3 * unseen * pixels,
            ),
            Stage(
                "replay",
                "replay the bag into the real node process and record its outputs",
                self.replay,
                {"threads": s.threads},
                estimate_s=20 + REPLAY_SAFETY * 0.3 * unseen * pixels,
            ),
            Stage(
                "bag_eval",
                "evaluate the recorded outputs against the bag's ground truth",
                self.bag_eval,
                {},
                estimate_s=5 + 0.1 * unseen * pixels,
            ),
            Stage("report", "write report.md", self.report, {"panels": s.panels}, estimate_s=5),
        ]


STAGE_NAMES = ("data", "train", "evaluate", "export", "bag", "offline", "replay", "bag_eval", "report")


# -- helpers -------------------------------------------------------------------------------
def preset_iterations() -> dict[str, int]:
    """Iterations of each stage of the demo's recipe under its preset (``training/recipes``):
    the demo's default training length, so the presets stay its one source."""
    from anomask.training.recipes import load_recipe

    return {stage.name: stage.solver.iterations for stage in load_recipe(RECIPE, PRESET).stages}


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def auto_threads() -> int:
    """1 when the machine is busy (1-minute load average at least its core count), else 0
    (the libraries' defaults: one thread per core). On a shared 2-core machine at load 6-8,
    one torch thread trained the small preset about 3.5 times faster than two (2 s vs 8 s
    per iteration): two threads per process then only fight over the cores."""
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores else 0


def tensorrt_unavailable() -> str | None:
    """Why no TensorRT engine can be built here, or None when it can."""
    if importlib.util.find_spec("tensorrt") is None:
        return f"TensorRT is not installed ({GPU_INSTALL})"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    return None


def replay_rate(processing_ms: dict[str, float], camera_rate_hz: float) -> float:
    """The largest play-rate factor (at most 1) at which the node, given ``REPLAY_SAFETY``
    times its slowest offline time per frame (p50, p99 and max, those given), finishes each
    frame before the next arrives (the node keeps only the newest frame, so a faster rate
    drops frames); two significant digits, rounded down."""
    slowest = max(processing_ms[key] for key in ("p50", "p99", "max") if processing_ms.get(key) is not None)
    needed_s = REPLAY_SAFETY * slowest / 1000
    rate = min(1.0, 1.0 / (camera_rate_hz * needed_s))
    digits = 1 - int(f"{rate:e}".split("e")[1])
    return float(int(rate * 10**digits) / 10**digits) or rate


def _split_progress(log):
    started = [time.monotonic()]

    def progress(split: str, done: int, total: int) -> None:
        if done == total:
            now = time.monotonic()
            log(f"data: {split}: {total} frames in {now - started[0]:.1f} s")
            started[0] = now

    return progress


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def private_ros_domain() -> int:
    """A ROS domain for this run's node, player and recorder (1..101: DDS ports clear of the
    ephemeral range), so the demo neither hears nor disturbs other ROS graphs on the host."""
    return random.Random(os.getpid()).randint(1, 101)


def run_demo(
    out: Path,
    settings: DemoSettings = DemoSettings(),
    *,
    force: bool = False,
    start: str | None = None,
    ros_domain: int | None = None,
    command: str | None = None,
    log=print,
) -> list:
    """Run (or continue) the demo in ``out``; returns the stage outcomes. ``ros_domain``
    sets ``ROS_DOMAIN_ID`` for the replay's processes (None: as the environment has it)."""
    out = Path(out)
    check_output_folder(out)
    if ros_domain is not None:
        os.environ["ROS_DOMAIN_ID"] = str(ros_domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    demo = Demo(out, settings)
    import torch

    host_threads = torch.get_num_threads()
    if demo.threads:
        torch.set_num_threads(demo.threads)
    try:
        return _run(demo, out, force=force, start=start, command=command, log=log)
    finally:
        torch.set_num_threads(host_threads)  # an in-process caller (tests, scripts) keeps its own


def _run(demo: Demo, out: Path, *, force: bool, start: str | None, command: str | None, log) -> list:
    settings = demo.settings
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / DEMO_FILE, {"settings": asdict(settings), "command": command})
    started = time.monotonic()
    threads = (
        f"{demo.threads} thread{'s' if demo.threads > 1 else ''} per process" if demo.threads else "default threads"
    )
    log(
        f"anomask demo in {out} on {demo.device} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}: "
        f"{threads}; "
        f"ROS domain {os.environ.get('ROS_DOMAIN_ID', '0')})"
    )
    outcomes = run_stages(demo.stages(), out, force=force, start=start, log=log)
    ran = [o.name for o in outcomes if o.ran]
    log(
        f"demo finished in {(time.monotonic() - started) / 60:.1f} min (ran: "
        f"{', '.join(ran) or 'nothing, all stages were done'}); "
        f"report: {out / 'report.md'}"
    )
    return outcomes


# -- command line ----------------------------------------------------------------------------
def _parse_size(text: str) -> tuple[int, int]:
    from anomask.training.data_cli import parse_size

    return parse_size(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoSettings()
    preset = preset_iterations()
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo_out"),
        help="output folder (default demo_out); a rerun skips finished stages",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="run every stage again")
    again.add_argument(
        "--from",
        dest="start",
        choices=STAGE_NAMES,
        metavar="STAGE",
        help=f"run this stage and every later one again ({', '.join(STAGE_NAMES)})",
    )
    parser.add_argument("--size", type=_parse_size, default=d.size, help="frame size HxW (default 256x512)")
    parser.add_argument("--seed", type=int, default=d.seed, help="data and training seed (default 0)")
    for name, default in (
        ("train", d.train_frames),
        ("val", d.val_frames),
        ("test", d.test_frames),
        ("anomaly-val", d.anomaly_val_frames),
    ):
        parser.add_argument(
            f"--{name}-frames", type=int, default=default, help=f"synthetic {name} frames (default {default})"
        )
    parser.add_argument(
        "--closed-set-iterations",
        type=int,
        default=d.closed_set_iterations,
        help=f"closed-set stage (default: the {PRESET} preset's, {preset[CLOSED_SET]})",
    )
    parser.add_argument(
        "--uno-iterations",
        type=int,
        default=d.uno_iterations,
        help=f"UNO fine-tune (default: the {PRESET} preset's, {preset[FINETUNE]})",
    )
    parser.add_argument(
        "--set",
        dest="train_settings",
        action="append",
        metavar="[STAGE:]KEY=VALUE",
        help=f"training override, as anomask train --set (repeatable; default {' '.join(TRAIN_SETTINGS)})",
    )
    parser.add_argument("--scores", nargs="+", help="scores to evaluate (default: every score of the model)")
    parser.add_argument(
        "--panels", type=int, default=d.panels, help="evaluation panels and report frames (default %(default)s)"
    )
    parser.add_argument(
        "--camera-rate", type=float, default=d.camera_rate_hz, help="bag frame rate in Hz (default %(default)s)"
    )
    parser.add_argument("--bag-frames", type=int, help="frames in the bag (default: every unseen-anomaly test frame)")
    parser.add_argument("--replay-rate", type=float, help="play-rate factor (default: from the offline time per frame)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads and the node's ONNX Runtime threads "
        "(default 0: 1 when the load average is at least the core count, else the libraries' defaults)",
    )
    parser.add_argument("--device", default="auto", help="training and evaluation device: cpu, cuda or auto (default)")
    parser.add_argument("--ros-domain", type=int, help="ROS domain of the replay (default: a private one per run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from_args(args: argparse.Namespace) -> DemoSettings:
    return DemoSettings(
        seed=args.seed,
        size=tuple(args.size),
        train_frames=args.train_frames,
        val_frames=args.val_frames,
        test_frames=args.test_frames,
        anomaly_val_frames=args.anomaly_val_frames,
        closed_set_iterations=args.closed_set_iterations,
        uno_iterations=args.uno_iterations,
        train_settings=TRAIN_SETTINGS + tuple(args.train_settings or ()),
        eval_scores=tuple(args.scores) if args.scores else None,
        panels=args.panels,
        camera_rate_hz=args.camera_rate,
        bag_frames=args.bag_frames,
        replay_rate=args.replay_rate,
        threads=args.threads,
        device=args.device,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    domain = private_ros_domain() if args.ros_domain is None else args.ros_domain
    run_demo(
        args.out,
        settings_from_args(args),
        force=args.force,
        start=args.start,
        ros_domain=domain,
        command=getattr(args, "command_line", None),
    )
    return 0
