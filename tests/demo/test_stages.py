"""The demo's stage runner on stand-in stages: markers, skipping, invalidation, --from,
--force, resumable folders, failures named by stage."""

import json

import pytest

from anomask.demo.stages import DEMO_FILE, MARKER, Stage, check_output_folder, read_marker, run_stages
from anomask.errors import AnomaskError


def _stages(calls, settings=None, fail=None, resumable=()):
    """Stages a, b, c; each records its call, writes a file and returns its folder's content."""
    settings = settings or {}

    def make(name):
        def run(ctx):
            calls.append(name)
            if name == fail:
                raise ValueError(f"broken {name}")
            leftovers = sorted(p.name for p in ctx.folder.iterdir())
            (ctx.folder / "output.txt").write_text(name)
            return {"name": name, "leftovers": leftovers, "previous": sorted(ctx.summaries), "forced": ctx.forced}

        return run

    return [
        Stage(n, f"stage {n}", make(n), settings.get(n, {}), estimate_s=1.0, resumable=n in resumable) for n in "abc"
    ]


def test_runs_every_stage_and_writes_markers(tmp_path):
    calls, lines = [], []
    outcomes = run_stages(_stages(calls), tmp_path, log=lines.append)
    assert calls == ["a", "b", "c"]
    assert [o.ran for o in outcomes] == [True, True, True]
    for name in "abc":
        marker = read_marker(tmp_path / name)
        assert marker["stage"] == name and marker["summary"]["name"] == name
    assert outcomes[2].summary["previous"] == ["a", "b"]
    assert any(
        line.startswith("[1/3] a: stage a (typically ~1 s") and "all remaining stages ~3 s" in line for line in lines
    )
    assert any(line.startswith("[3/3] c: finished in") for line in lines)


def test_rerun_skips_finished_stages_and_passes_their_summaries(tmp_path):
    run_stages(_stages([]), tmp_path, log=lambda _: None)
    calls, lines = [], []
    outcomes = run_stages(_stages(calls), tmp_path, log=lines.append)
    assert calls == []
    assert [o.ran for o in outcomes] == [False, False, False]
    assert outcomes[1].summary["name"] == "b"
    assert all("skipped" in line for line in lines)


def test_changed_settings_rerun_that_stage_and_every_later_one(tmp_path):
    run_stages(_stages([]), tmp_path, log=lambda _: None)
    calls = []
    run_stages(_stages(calls, settings={"b": {"iterations": 5}}), tmp_path, log=lambda _: None)
    assert calls == ["b", "c"]
    calls.clear()
    run_stages(_stages(calls, settings={"b": {"iterations": 5}}), tmp_path, log=lambda _: None)
    assert calls == []


def test_from_reruns_a_stage_with_a_fresh_folder(tmp_path):
    run_stages(_stages([]), tmp_path, log=lambda _: None)
    before = (tmp_path / "a" / MARKER).read_text()
    calls = []
    outcomes = run_stages(_stages(calls), tmp_path, start="b", log=lambda _: None)
    assert calls == ["b", "c"]
    assert (tmp_path / "a" / MARKER).read_text() == before
    assert outcomes[1].summary["leftovers"] == [] and outcomes[1].summary["forced"]
    assert not outcomes[2].summary["forced"]


def test_force_reruns_everything(tmp_path):
    run_stages(_stages([]), tmp_path, log=lambda _: None)
    calls = []
    run_stages(_stages(calls), tmp_path, force=True, log=lambda _: None)
    assert calls == ["a", "b", "c"]


def test_unknown_from_stage_lists_the_stages(tmp_path):
    with pytest.raises(AnomaskError, match="no such stage; stages: a, b, c"):
        run_stages(_stages([]), tmp_path, start="x")


def test_failure_names_the_stage_and_keeps_finished_stages(tmp_path):
    calls = []
    with pytest.raises(AnomaskError) as error:
        run_stages(_stages(calls, fail="b"), tmp_path, log=lambda _: None)
    message = str(error.value)
    assert "demo stage 'b' failed: ValueError: broken b" in message
    assert "finished stages kept" in message and ": a;" in message
    assert read_marker(tmp_path / "a") is not None
    assert read_marker(tmp_path / "b") is None and not (tmp_path / "c").exists()
    calls.clear()
    run_stages(_stages(calls), tmp_path, log=lambda _: None)
    assert calls == ["b", "c"]


def test_resumable_stage_keeps_its_folder_unless_forced(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint").write_text("partial")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "stale").write_text("old")
    outcomes = run_stages(_stages([], resumable=("b",)), tmp_path, log=lambda _: None)
    assert outcomes[1].summary["leftovers"] == ["checkpoint"]
    assert outcomes[2].summary["leftovers"] == []
    outcomes = run_stages(_stages([], resumable=("b",)), tmp_path, start="b", log=lambda _: None)
    assert outcomes[1].summary["leftovers"] == []


def test_corrupt_marker_reruns_the_stage(tmp_path):
    run_stages(_stages([]), tmp_path, log=lambda _: None)
    (tmp_path / "c" / MARKER).write_text("{not json")
    calls = []
    run_stages(_stages(calls), tmp_path, log=lambda _: None)
    assert calls == ["c"]
    assert json.loads((tmp_path / "c" / MARKER).read_text())["stage"] == "c"


def test_output_folder_must_be_new_empty_or_a_demo(tmp_path):
    check_output_folder(tmp_path / "new")
    check_output_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AnomaskError, match="holds no earlier demo"):
        check_output_folder(tmp_path)
    (tmp_path / DEMO_FILE).write_text("{}")
    check_output_folder(tmp_path)
    with pytest.raises(AnomaskError, match="not a folder"):
        check_output_folder(tmp_path / "notes.txt")
