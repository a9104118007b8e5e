"""``anomask bench quality``: the harness on a tiny synthetic dataset and a tiny model (the
numbers mean nothing there; the structure, the resume and the claim logic are the point)."""

import json
import math

import pytest
import torch

from anomask.bench.quality.claims import CLAIMS, Claim, Comparison, judge
from anomask.bench.quality.cli import settings_from_args
from anomask.bench.quality.metrics import TEST, VAL, value
from anomask.bench.quality.plan import MODELS, RUNS, CostModel, Iterations
from anomask.bench.quality.runner import QualityRun
from anomask.cli import build_parser, main
from anomask.errors import AnomaskError
from anomask.models.panoptic_methods import PANOPTIC_METHODS
from anomask.training.data.synthetic import SynthConfig, generate

from ..conftest import TINY_SETTINGS

TINY_MODEL = [setting for setting in TINY_SETTINGS if setting.startswith("model.")]
SECTIONS = (
    "### All models",
    "### EAM (Grcić et al., 2023), Table 5",
    "### EAM (Grcić et al., 2023), §3.4",
    "### UNO (Delić et al., 2024), Table 8",
    "### UNO (Delić et al., 2024), Table 5",
    "### Mask2Anomaly (Rai et al., 2024), Table 5(a)",
    "### Mask2Anomaly (Rai et al., 2024), Table 5(c)",
    "### Noisy negatives (Bevandić et al., 2022), Table 3",
    "### Mask2Anomaly (Rai et al., 2024), Tables 4 and 8",
    "### GOSS (Hong et al., 2022)",
    "### Claims",
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality-data")
    generate(root, SynthConfig(seed=0, train=4, val=2, test=4, anomaly_val=2, height=64, width=128))
    return root


def _command(data, out, *extra):
    settings = [f"--set={s}" for s in ["data.crop=[64,128]", "data.scales=[1.0]", *TINY_MODEL]]
    return [
        "bench",
        "quality",
        "--iterations",
        "2",
        "1",
        "--dataset",
        str(data),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        *settings,
        *extra,
    ]


@pytest.mark.slow
def test_smoke_run_writes_the_report_and_resume_skips_finished_models(tiny_data, tmp_path):
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    try:
        assert main(_command(tiny_data, out)) == 0
        report = (out / "report.md").read_text()
        results = json.loads((out / "results.json").read_text())
        for section in SECTIONS:
            assert section in report
        for claim in CLAIMS:
            assert f"| {claim.id} |" in report
        assert {c["verdict"] for c in results["claims"]} <= {"reproduced", "not reproduced"}
        assert all(c["why"] for c in results["claims"] if c["verdict"] == "not reproduced")
        assert set(results["models"]) == {m.name for m in MODELS}
        assert results["settings"]["iterations"] == {"base": 2, "finetune": 1}
        for model in MODELS:
            data = results["models"][model.name]
            assert data["iterations"] == (2 if model.name in ("m2f", "gma", "pp") else 1)
            assert not math.isnan(
                value(results["models"], model.name, "msm" if model.per_pixel else model.scores[0], "ap")
            )
            assert VAL in data["metrics"]["datasets"] and TEST in data["metrics"]["datasets"]
        for method in PANOPTIC_METHODS:
            assert method in results["models"]["gma-cl"]["metrics"]["datasets"][TEST]["panoptic"]
        assert set(results["models"]["pp-noisy"]["terms"][TEST]) == {"op", "msm", "op_msm"}
        record = json.loads((out / "quality.json").read_text())  # the benchmark result file
        assert record["benchmark"] == "quality" and record["results"]["claims"] == results["claims"]

        finals = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("final/model.safetensors")}
        assert len(finals) == len(MODELS)
        kept = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.json") if p.stem != "m2f-uno"}
        (out / "models" / "m2f-uno.json").unlink()
        first = results["timing"]
        assert first["wall_s"] == first["this_invocation_s"] > 0
        assert main(_command(tiny_data, out, "--resume")) == 0
        second = json.loads((out / "results.json").read_text())["timing"]
        assert second["wall_s"] == pytest.approx(first["wall_s"] + second["this_invocation_s"])  # both invocations
        assert (out / "models" / "m2f-uno.json").is_file()
        assert {p: p.stat().st_mtime_ns for p in finals} == finals  # nothing retrained
        assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished models not re-evaluated
        assert "m2f-uno" in json.loads((out / "results.json").read_text())["models"]

        assert main(_command(tiny_data, out)) == 2  # an existing run needs --resume
        assert main(_command(tiny_data, out, "--resume", "--seed", "3")) == 2  # other settings
        other = tmp_path / "other"  # a stand-in for a run with another seed: the same models, one AP moved
        other.mkdir()
        data = json.loads((out / "results.json").read_text())
        data["settings"]["seed"] = 7
        data["models"]["m2f"]["metrics"]["datasets"][TEST]["anomaly"][TEST]["eam"]["ap"] += 0.25
        (other / "results.json").write_text(json.dumps(data))
        assert main(_command(tiny_data, out, "--resume", "--compare", str(other))) == 0
        compared = json.loads((out / "results.json").read_text())
        assert compared["noise"]["other_seed"] == 7
        assert compared["noise"]["metrics"]["ap"]["max"] == pytest.approx(0.25)
        assert compared["noise"]["metrics"]["fpr95"]["max"] == 0
        assert "### Seed-to-seed noise" in (out / "report.md").read_text()
    finally:
        torch.set_num_threads(threads)


def test_bad_options_are_errors(tiny_data, tmp_path):
    assert main(["bench", "quality", "--out", str(tmp_path / "a"), "--dataset", str(tiny_data)]) == 2  # no budget
    assert main(["bench", "quality", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert (
        main(["bench", "quality", "--budget-minutes", "0.5", "--dataset", str(tiny_data), "--out", str(tmp_path / "b")])
        == 2
    )
    assert (
        main(["bench", "quality", "--iterations", "2", "1", "--dataset", str(tmp_path), "--out", str(tmp_path / "c")])
        == 2
    )
    assert (
        main(["bench", "quality", "--iterations", "0", "1", "--dataset", str(tiny_data), "--out", str(tmp_path / "d")])
        == 2
    )


def test_resume_keeps_the_budget_the_run_was_started_with(tiny_data, tmp_path):
    def settings(*argv):
        argv = ["bench", "quality", *argv]
        return settings_from_args(build_parser(argv).parse_args(argv))[0]

    started = settings("--budget-minutes", "45", "--dataset", str(tiny_data), "--out", str(tmp_path / "run"))
    QualityRun(started).open_plan(resume=False)
    resumed = settings("--resume", "--out", str(tmp_path / "run"))
    assert resumed.budget_minutes == 45
    assert resumed.iterations == started.iterations and resumed.dataset == started.dataset


def test_budget_sets_iterations_through_the_cost_model():
    cost = CostModel()
    small, large = cost.iterations(60, 130), cost.iterations(120, 130)
    assert large.base > small.base >= 10 and small.base % 10 == 0
    assert small.finetune == round(small.base * cost.finetune_share)
    assert cost.training_seconds(small) + cost.eval_seconds(130) + cost.overhead_s <= 60 * 60
    bigger = Iterations(small.base + 10, round((small.base + 10) * cost.finetune_share))
    assert cost.training_seconds(bigger) + cost.eval_seconds(130) + cost.overhead_s > 60 * 60
    with pytest.raises(AnomaskError, match="no time to train"):
        cost.iterations(1, 130)


def test_every_model_is_trained_by_a_run_that_comes_after_its_init():
    names = [run.name for run in RUNS]
    for run in RUNS:
        if run.init is not None:
            base = next(m for m in MODELS if m.name == run.init)
            assert names.index(base.run) < names.index(run.name)
    assert all(any(m.run == run.name for m in MODELS) for run in RUNS)


def _results(ap_a, ap_b, prior=0.01, fpr_a=0.5, fpr_b=0.6):
    """Two fake models' test-split tables, each with ``prior`` anomaly pixels."""

    def table(ap, fpr):
        return {
            "ap": ap,
            "fpr95": fpr,
            "auroc": 0.9,
            "positives": int(1000 * prior),
            "negatives": int(1000 * (1 - prior)),
        }

    def model(ap, fpr):
        return {"metrics": {"datasets": {TEST: {"anomaly": {TEST: {"s": table(ap, fpr)}}}}}}

    return {"a": model(ap_a, fpr_a), "b": model(ap_b, fpr_b)}


CLAIM = Claim(
    "t",
    "test",
    "a beats b",
    (Comparison(("a", "s"), ("b", "s")), Comparison(("a", "s"), ("b", "s"), "fpr95")),
    "because",
)


def test_claim_verdicts():
    assert judge(CLAIM, _results(0.30, 0.10)).reproduced
    reversed_ = judge(CLAIM, _results(0.10, 0.30))
    assert not reversed_.reproduced and reversed_.why == "probably because"
    chance = judge(CLAIM, _results(0.015, 0.012))  # both below 2x the 1 % prior
    assert not chance.reproduced and "chance" in chance.why and chance.details[0].startswith("≈ chance")
    noisy = judge(CLAIM, _results(0.30, 0.28), noise={"ap": 0.05, "fpr95": 0.01})
    assert not noisy.reproduced and "noise" in noisy.why
    assert judge(CLAIM, _results(0.30, 0.10), noise={"ap": 0.05, "fpr95": 0.01}).reproduced
    missing = judge(CLAIM, {"a": {}, "b": {}})
    assert not missing.reproduced and "missing" in missing.why


def test_comparable_and_gain_comparisons():
    results = _results(0.30, 0.27)
    assert Comparison(("a", "s"), ("b", "s"), kind="comparable").holds(results)
    assert not Comparison(("a", "s"), ("b", "s"), kind="comparable").holds(_results(0.30, 0.10))
    assert value(results, "a", "s", "ap", "seen") != value(results, "a", "s", "ap", "seen")  # no seen subset: NaN
