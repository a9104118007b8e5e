"""make gpu-check's runner: stages in their own processes under a timeout, PASS / FAIL / SKIP
with the reason, one JSON. The full CPU run (environment and legality PASS, the rest SKIP,
exit 0) takes minutes here, so this tests the pieces: the stage process protocol on a real
stage, and the runner on stand-in stages."""

import json
import sys
import time

import pytest

from anomask.bench import gpu_check
from anomask.bench.gpu_check import STAGES, Skip, Stage, run_all, run_stage_here, run_stage_process


def _passes(work):
    return {"value": 1}


def _skips(work):
    raise Skip("no CUDA device")


def _fails(work):
    raise ValueError("engine refused\nsecond line")


def test_a_stage_record_says_pass_skip_or_fail_with_the_reason(tmp_path):
    assert run_stage_here(Stage("a", 1, _passes), tmp_path) == {"status": "PASS", "figures": {"value": 1}}
    assert run_stage_here(Stage("b", 1, _skips), tmp_path) == {"status": "SKIP", "reason": "no CUDA device"}
    assert run_stage_here(Stage("c", 1, _fails), tmp_path) == {"status": "FAIL", "reason": "ValueError: engine refused"}


def test_a_real_stage_runs_in_its_own_process(tmp_path):
    """Without CUDA a GPU stage says SKIP and why; the environment stage reports the machine."""
    by_name = {stage.name: stage for stage in STAGES}
    environment = run_stage_process(by_name["environment"], tmp_path, timeout_s=120)
    assert environment["status"] == "PASS", environment
    figures = environment["figures"]
    assert figures["python"].startswith("3.") and list(figures["onnxruntime_distributions"]) == ["onnxruntime"]
    assert "CPUExecutionProvider" in figures["onnxruntime_providers"]
    if not figures["cuda_available"]:
        record = run_stage_process(by_name["tensorrt"], tmp_path, timeout_s=120)
        assert record["status"] == "SKIP" and "no CUDA device" in record["reason"]


def test_the_runner_times_out_a_hung_stage_and_keeps_going(tmp_path, monkeypatch):
    """A stage that hangs fails on its timeout; the stages after it still run; a spent budget
    skips the rest."""
    hang = Stage("hang", 1, _passes)
    monkeypatch.setattr(
        gpu_check, "run_stage_process", lambda stage, work, timeout_s: _fake_process(stage, work, timeout_s)
    )
    lines = []
    records = run_all((hang, Stage("ok", 30, _passes)), tmp_path, budget_s=60, log=lines.append)
    assert [r["status"] for r in records] == ["FAIL", "PASS"]
    assert records[0]["reason"] == "timed out after 1 s"
    assert lines[0].startswith("FAIL") and "hang" in lines[0] and " s " in lines[0]
    records = run_all((Stage("ok", 30, _passes),), tmp_path, budget_s=1)
    assert records == [{"name": "ok", "status": "SKIP", "reason": "time budget spent", "seconds": 0.0}]


def _fake_process(stage, work, timeout_s):
    """run_stage_process with a real child that sleeps past the timeout for stage 'hang'."""
    if stage.name != "hang":
        return {"name": stage.name, **run_stage_here(stage, work), "seconds": 0.0}
    import subprocess

    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"name": stage.name, "status": "FAIL", "reason": f"timed out after {timeout_s:.0f} s",
                "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    raise AssertionError("the sleeping child was not timed out")


def test_main_writes_one_json_and_exits_0_when_nothing_failed(tmp_path, monkeypatch):
    stages = (Stage("environment", 5, _passes), Stage("tensorrt", 5, _skips))
    monkeypatch.setattr(gpu_check, "STAGES", stages)
    monkeypatch.setattr(
        gpu_check, "run_stage_process", lambda s, w, t: {"name": s.name, **run_stage_here(s, w), "seconds": 0.1}
    )
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(s["name"], s["status"]) for s in report["stages"]] == [("environment", "PASS"), ("tensorrt", "SKIP")]
    assert report["budget_s"] == gpu_check.BUDGET_S <= 480 and "started_utc" in report
    monkeypatch.setattr(gpu_check, "STAGES", (*stages, Stage("legality", 5, _fails)))
    assert gpu_check.main(["--out", str(out)]) == 1


def test_stage_timeouts_fit_the_budget_of_the_issue():
    """Eight minutes on one GPU at most, whatever each stage's own timeout."""
    assert gpu_check.BUDGET_S <= 8 * 60
    assert {stage.name for stage in STAGES} >= {
        "environment", "legality", "torch_cuda", "bench_runtime", "amp_training", "tensorrt",
        "torch_tensorrt", "onnxruntime_gpu", "pytest_gpu",
    }  # fmt: skip


def test_the_parity_figures_the_gpu_stages_report(standin_onnx):
    """cpu_reference and parity, shared by the engine and provider stages, on the CPU."""
    path = standin_onnx[0]
    frames, reference = gpu_check.cpu_reference(path)
    assert frames.dtype.name == "uint8" and set(reference) >= {"semantic", "anomaly"}
    same = gpu_check.parity(reference, {k: v.copy() for k, v in reference.items()})
    assert same == {"semantic_agreement": 1.0, "anomaly_max_diff": 0.0, "outputs_within_tolerance": True,
                    "outputs_off": []}  # fmt: skip
    changed = {k: v.copy() for k, v in reference.items()}
    changed["semantic"] = changed["semantic"] + 1
    changed["anomaly"] = changed["anomaly"] + 0.5
    off = gpu_check.parity(reference, changed)
    assert off["semantic_agreement"] == 0.0 and off["anomaly_max_diff"] == pytest.approx(0.5)
    assert not off["outputs_within_tolerance"] and len(off["outputs_off"]) == 2
