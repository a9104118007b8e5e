import json

import pytest

from anomask.cli import main

from ..conftest import save_tiny_model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("int8"))[2]


def test_bench_int8_measures_calibration_and_agreement_and_writes_the_result_file(
    tiny_checkpoint, tiny_synthetic, tmp_path, capsys
):
    out = tmp_path / "int8.json"
    command = ["bench", "int8", str(tiny_checkpoint), "--size", "64x128", "--dataset", str(tiny_synthetic)]
    assert main([*command, "--calib-frames", "4", "--test-frames", "2", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "calibration: 4 train images" in printed and "TensorRT check: 0 problems" in printed
    results = json.loads(out.read_text())["results"]
    assert results["calib_frames"] == 4 and results["test_frames"] == 2
    assert results["tensorrt_problems"] == 0 and results["int8_nodes"] > 20
    assert 0.0 <= results["semantic_agreement_worst"] <= results["semantic_agreement"] <= 1.0
    assert results["open_set_agreement"] is None  # the tiny checkpoint has no calibrated threshold
    assert results["peak_rss_mib"] >= results["rss_before_mib"] > 0 and results["calibration_cpu_s"] > 0


def test_bench_int8_names_a_missing_checkpoint_or_dataset(tiny_checkpoint, tmp_path, capsys):
    assert main(["bench", "int8", str(tmp_path / "nothing.safetensors"), "--dataset", str(tmp_path)]) == 2
    assert "nothing.safetensors: checkpoint not found" in capsys.readouterr().err
    assert main(["bench", "int8", str(tiny_checkpoint), "--dataset", str(tmp_path)]) == 2
    assert "no leftImg8bit/train (not a synthetic dataset)" in capsys.readouterr().err
