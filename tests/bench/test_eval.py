import numpy as np

from anomask.bench import eval as eval_bench
from anomask.bench.eval import METRICS, NUM_CLASSES, measure, synthetic_sample
from anomask.cli import main
from anomask.evaluation.metrics.inputs import check_anomaly_labels, check_class_ids


def test_synthetic_sample_follows_the_contracts():
    sample = synthetic_sample(np.random.default_rng(0), 128, 256)
    check_anomaly_labels(sample.anomaly, "synthetic")
    check_class_ids(sample.semantic, NUM_CLASSES, "semantic", "synthetic")
    assert sample.prediction.max() < NUM_CLASSES
    assert sample.scores.dtype == np.float32 and (sample.anomaly == 1).any()
    assert sample.scores[sample.anomaly == 1].mean() > sample.scores[sample.anomaly == 0].mean()


def test_measure_streams_every_metric():
    report = measure(3, 96, 160, METRICS, seed=1)
    assert report["images"] == 3 and set(report["ms_per_image"]) == set(METRICS)
    assert report["peak_rss_mb"] >= report["first_image_rss_mb"] >= report["imports_rss_mb"] > 0
    assert 0 < report["ap"] <= 1 and report["mantissa_bits"] == 23


def test_cli_runs_each_size_in_its_own_process(capsys, monkeypatch):
    monkeypatch.setattr(eval_bench, "START_METHOD", "fork")  # spawn re-imports torch: 10+ s
    assert (
        main(["bench", "eval", "--images", "2", "--height", "64", "--width", "96", "--metrics", "pixel", "goss"]) == 0
    )
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 1 and rows[0][0] == "2" and rows[0][-1] == "23"  # exact pixel table
    assert "FPR95" in out and "interpolated" in out


def test_cli_rejects_bad_sizes():
    assert main(["bench", "eval", "--images", "0"]) == 2
