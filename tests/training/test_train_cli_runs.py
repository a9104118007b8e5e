"""What ``anomask train`` does with a folder that already holds a run, and what it says:
a stale ``final/`` is never reported as the result, a fresh run into a used folder refuses
(or, with ``--overwrite``, says what it deletes), paths are stored absolute, ``--resume``
names its checkpoint and the Cityscapes-scale preset on a CPU warns of its cost (issue 17,
items 1, 7, 8; progress lines: tests/cli/test_progress.py)."""

import json
import shutil

import pytest

from anomask.cli import main
from anomask.models import load_metadata

pytestmark = pytest.mark.slow

QUICK = ("--set", "validation.every=0", "--set", "checkpoint.every=1")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_synthetic, tiny_args):
    """A finished 3-iteration closed-set run."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(tiny_args(tiny_synthetic, out, *QUICK, iterations=3)) == 0
    return out


def _used_copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def test_a_fresh_run_into_a_used_folder_refuses_and_names_what_is_there(
    finished, tiny_synthetic, tiny_args, tmp_path, capsys
):
    out = _used_copy(finished, tmp_path)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(tiny_args(tiny_synthetic, out, *QUICK, "--set", "solver.lr=0.001", iterations=4)) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"anomask: error: --out {out} holds an earlier training run (run.json, closed-set/): continue it with "
        "--resume, delete it and start again with --overwrite, or choose another --out"
    )
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing touched


def _new_settings(out):
    """run.json as a new run with 4 iterations and another lr writes it before its first
    step (the issue's kill at iteration 2: the old stage folder is still there)."""
    spec = json.loads((out / "run.json").read_text())
    spec["overrides"]["*"]["solver"] = {"iterations": 4, "lr": 0.001}
    (out / "run.json").write_text(json.dumps(spec) + "\n")


def test_resume_never_reports_a_stale_final(finished, tmp_path, capsys):
    out = _used_copy(finished, tmp_path)
    _new_settings(out)
    # The old run's checkpoints are there: not continued, a one-line error.
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "training the stage again" in captured.out and "nothing to do" not in captured.out
    assert captured.err.strip().splitlines() == [
        f"anomask: error: {out / 'closed-set' / 'checkpoints' / 'iter_00000003'}: written with other settings or "
        f"from another model than {out / 'run.json'} says; start again with --overwrite or choose another --out"
    ]
    # Without them: the stage is trained again with the run's settings.
    shutil.rmtree(out / "closed-set" / "checkpoints")
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    final = out / "closed-set" / "final" / "model.safetensors"
    assert f"trained: {final}" in capsys.readouterr().out
    assert load_metadata(final).extra["recipe"]["stages"][0]["solver"]["lr"] == 0.001
    assert json.loads((final.parent / "summary.json").read_text())["iterations"] == 4


def test_overwrite_deletes_the_earlier_run_and_says_so(finished, tiny_synthetic, tiny_args, tmp_path, capsys):
    out = _used_copy(finished, tmp_path)
    (out / "notes.txt").write_text("mine")
    assert main(tiny_args(tiny_synthetic, out, *QUICK, "--overwrite", iterations=2)) == 0
    printed = capsys.readouterr().out
    assert f"--overwrite: deleted run.json, closed-set/ in {out}" in printed
    assert sorted(p.name for p in (out / "closed-set" / "checkpoints").iterdir()) == ["iter_00000001", "iter_00000002"]
    assert json.loads((out / "closed-set" / "final" / "summary.json").read_text())["iterations"] == 2
    assert (out / "notes.txt").read_text() == "mine"  # not the run's: kept


def test_resume_of_a_finished_run_says_so_and_names_the_models(finished, tmp_path, capsys):
    out = _used_copy(finished, tmp_path)
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"stage 'closed-set' has finished: {out / 'closed-set' / 'final' / 'model.safetensors'}" in printed
    assert f"nothing to do: every stage in {out} has finished" in printed


def test_resume_says_which_checkpoint_it_continues_from(finished, tmp_path, capsys):
    out = _used_copy(finished, tmp_path)
    shutil.rmtree(out / "closed-set" / "final")
    shutil.rmtree(out / "closed-set" / "checkpoints" / "iter_00000003")
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    checkpoint = out / "closed-set" / "checkpoints" / "iter_00000002"
    assert f"stage 'closed-set': continuing from {checkpoint} (iteration 2 of 3)" in capsys.readouterr().out


def test_relative_paths_are_stored_absolute_so_resume_works_from_anywhere(
    finished, tiny_synthetic, tiny_args, tmp_path, monkeypatch, capsys
):
    """``--init`` and ``--dataset`` given relative; killed before the first checkpoint
    (simulated: nothing but run.json); resumed from another working directory."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    shutil.copytree(tiny_synthetic, work / "data")
    shutil.copy(finished / "closed-set" / "final" / "model.safetensors", work / "closed.safetensors")
    monkeypatch.chdir(work)
    args = tiny_args("data", "runs/uno", *QUICK, "--init", "closed.safetensors", recipe="uno", iterations=1)
    assert main(args) == 0
    spec = json.loads((work / "runs" / "uno" / "run.json").read_text())
    assert spec["init"] == str(work / "closed.safetensors")
    assert spec["overrides"]["*"]["data"]["dataset"] == str(work / "data")
    shutil.rmtree(work / "runs" / "uno" / "finetune")
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(work / "runs" / "uno"), "--no-progress"]) == 0
    assert "stage 'finetune': no checkpoint in" in capsys.readouterr().out
    assert (work / "runs" / "uno" / "finetune" / "final" / "model.safetensors").is_file()


def test_default_preset_on_a_cpu_warns_of_its_cost_before_starting(tmp_path, capsys):
    # A recipe file that fails to load data right after the warning: nothing is trained.
    assert main(["train", "--device", "cpu", "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "warning: preset 'default' (Cityscapes scale) on the CPU: 90000 iterations, about 375 hours (a batch of 16 "
        "512x1024 crops takes ~15 s on a 2-core CPU); --preset small is sized for a CPU\n"
    )
