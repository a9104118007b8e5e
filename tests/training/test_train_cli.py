"""``anomask train`` end to end on a tiny synthetic dataset: kill-and-resume, DDP, recipes,
bad inputs. Runs in this process where possible (``anomask.cli.main``); the killed run
and the two DDP workers are real subprocesses."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anomask.cli import main
from anomask.models import load_checkpoint, load_metadata
from anomask.models.heads import threshold_at_tpr
from anomask.training.data.synthetic import SyntheticAnomalyDataset
from anomask.training.validation import predict

pytestmark = pytest.mark.slow


def _train(args):
    assert main(args) == 0


def _weights(path):
    return load_file(str(path))


def _losses(run, stage="closed-set"):
    lines = (json.loads(line) for line in (run / stage / "metrics.jsonl").read_text().splitlines())
    return [(entry["iteration"], entry["loss"]) for entry in lines if entry["kind"] == "train"]


# Frozen backbone: smaller checkpoints and steps (the optimizer holds no backbone state),
# and BatchNorm in eval mode, so one process and two DDP processes compute the same thing.
# (Trainable, CPU DDP keeps per-process BatchNorm batch statistics - SyncBatchNorm is
# GPU-only - and the two curves differ by ~2 % from the first iteration, measured.)
RUN = ("--set", "model.freeze_backbone=true", "--set", "checkpoint.every=3", "--set", "validation.every=0")
ITERATIONS = 6


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_synthetic, tiny_args):
    """An uninterrupted 6-iteration closed-set run, checkpoints at 3 and 6."""
    out = tmp_path_factory.mktemp("reference")
    _train(tiny_args(tiny_synthetic, out, *RUN, iterations=ITERATIONS))
    return out


def test_sigkill_then_resume_gives_bitwise_the_same_weights(reference, tiny_synthetic, tiny_args, tmp_path):
    out = tmp_path / "killed"
    args = tiny_args(tiny_synthetic, out, *RUN, iterations=ITERATIONS)
    # The reference ran in this process: the same thread count makes the CPU kernels' sums the same.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        [sys.executable, "-m", "anomask", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    log = out / "closed-set" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (log.is_file() and any(i >= 4 for i, _ in _losses(out))):  # past the checkpoint at 3
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the training subprocess made no progress"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert not (out / "closed-set" / "final").exists(), "the kill came after the end: nothing was interrupted"
    _train(["train", "--resume", "--out", str(out), "--no-progress"])
    expected = _weights(reference / "closed-set" / "final" / "model.safetensors")
    resumed = _weights(out / "closed-set" / "final" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    assert _losses(out) == _losses(reference)  # also the logged loss curve, line for line


def test_corrupted_newest_checkpoint_is_refused_and_the_previous_kept(reference, tmp_path, capsys):
    """... and resuming from the named previous checkpoint still reaches the reference."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "closed-set" / "final")
    newest = out / "closed-set" / "checkpoints" / "iter_00000006" / "trainer_state.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "trainer_state.pt: corrupted or truncated trainer state, refused" in error
    assert "iter_00000003 is intact: resume from it with --resume" in error
    previous = out / "closed-set" / "checkpoints" / "iter_00000003"
    assert (previous / "model.safetensors").is_file()
    _train(["train", "--resume", str(previous), "--out", str(out), "--no-progress"])
    expected = _weights(reference / "closed-set" / "final" / "model.safetensors")
    resumed = _weights(out / "closed-set" / "final" / "model.safetensors")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_follow_the_single_process_loss_curve(reference, tiny_synthetic, tiny_args, tmp_path):
    """The reference's global batch of 2, split 1 + 1 over two torchrun CPU workers (gloo):
    the loss curves agree to float rounding (measured 1.3e-7 relative)."""
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "anomask",
        *tiny_args(tiny_synthetic, out, *RUN, iterations=ITERATIONS),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _losses(reference), _losses(out)
    assert [i for i, _ in one] == [i for i, _ in two] == list(range(1, ITERATIONS + 1))
    for (_, a), (_, b) in zip(one, two):
        assert abs(a - b) <= 1e-5 * abs(a)


def test_uno_from_a_closed_set_checkpoint(reference, tiny_synthetic, tiny_args, tmp_path):
    init = reference / "closed-set" / "final" / "model.safetensors"
    out = tmp_path / "uno"
    _train(tiny_args(tiny_synthetic, out, "--init", str(init), recipe="uno", iterations=1))
    assert not (out / "closed-set").exists()  # --init skips the closed-set stage
    metadata = load_metadata(out / "finetune" / "final" / "model.safetensors")
    assert metadata.architecture.negative_class and metadata.architecture.num_outputs == len(metadata.classes) + 2
    assert metadata.recipe == "uno" and "uno@tpr95" in metadata.thresholds


@pytest.mark.parametrize("recipe", ["eam", "mask2anomaly", "per-pixel", "open-panoptic"])
def test_every_recipe_runs_on_the_synthetic_default(recipe, reference, tiny_synthetic, tiny_args, tmp_path):
    init = reference / "closed-set" / "final" / "model.safetensors"
    extra = ("--init", str(init)) if recipe == "eam" else ()  # mask2anomaly: its own GMA stage first
    _train(tiny_args(tiny_synthetic, tmp_path, *extra, "--set", "validation.every=0", recipe=recipe, iterations=1))
    finals = sorted(tmp_path.glob("*/final/model.safetensors"), key=lambda p: p.stat().st_mtime)
    metadata = load_metadata(finals[-1])
    assert metadata.recipe == recipe and metadata.thresholds
    summary = json.loads((finals[-1].parent / "summary.json").read_text())
    assert {"miou", "ap", "fpr95"} <= set(summary)


def test_thresholds_come_from_the_anomaly_validation_split(reference, tiny_synthetic):
    """The stored eam@tpr95 is the TPR-95 % threshold of the final model on the anomaly
    *validation* images (seen objects), not on the test split, and the metadata says so."""
    model, metadata = load_checkpoint(reference / "closed-set" / "final" / "model.safetensors")
    assert metadata.extra["calibration"] == {
        "dataset": str(tiny_synthetic),
        "root": str(tiny_synthetic.resolve()),
        "split": "anomaly_val",
        "test_split": False,
        "tpr": 0.95,
        "images": 2,
        "score": "eam",
    }

    samples = list(SyntheticAnomalyDataset(tiny_synthetic, "anomaly_val"))
    scores = [predict(model.eval(), metadata, s["image"], "eam", torch.device("cpu"), scale=0.5)[1] for s in samples]
    assert metadata.thresholds == {
        "eam@tpr95": threshold_at_tpr(np.stack(scores), np.stack([s["anomaly"] for s in samples]))
    }
    assert metadata.command.startswith("anomask train --recipe closed-set")  # the argv anomask.cli.main was given
    summary = json.loads((reference / "closed-set" / "final" / "summary.json").read_text())
    assert summary["calibration"]["split"] == "anomaly_val" and not any(k.endswith("_unseen") for k in summary)
