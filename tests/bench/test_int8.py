import json

import pytest

from anomask.cli import main

from ..conftest import save_tiny_model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("int8"))[2]


def test_bench_int8_measures_calibration_and_agreement_and_writes_the_result_file(
    small_model, tiny_synthetic, tmp_path, capsys
):
    """On the suite's exported small model (the default EfficientNet-Lite0 backbone, random)."""
    out = tmp_path / "int8.json"
    command = ["bench", "int8", str(small_model.onnx), "--dataset", str(tiny_synthetic)]
    assert main([*command, "--calib-frames", "3", "--test-frames", "2", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "calibration: 3 train images" in printed and "TensorRT check: 0 problems" in printed
    rows = json.loads(out.read_text())["results"]["rows"]
    assert [(row["calib_frames"], row["test_frames"]) for row in rows] == [(3, 2)]
    for row in rows:
        assert row["tensorrt_problems"] == 0 and row["int8_nodes"] > 20 and row["size"] == "64x128"
        assert 0.0 <= row["semantic_agreement_worst"] <= row["semantic_agreement"] <= 1.0
        assert row["open_set_agreement"] is None  # the tiny checkpoint has no calibrated threshold
        assert row["peak_rss_mib"] >= row["rss_before_mib"] > 0 and row["calibration_cpu_s"] > 0


def test_bench_int8_names_a_missing_checkpoint_or_dataset(tiny_checkpoint, small_model, tmp_path, capsys):
    assert main(["bench", "int8", str(tmp_path / "nothing.safetensors"), "--dataset", str(tmp_path)]) == 2
    assert "nothing.safetensors: checkpoint or ONNX file not found" in capsys.readouterr().err
    assert main(["bench", "int8", str(tiny_checkpoint), "--dataset", str(tmp_path)]) == 2
    assert "no leftImg8bit/train (not a synthetic dataset)" in capsys.readouterr().err
    assert main(["bench", "int8", str(small_model.onnx), "--size", "64x128"]) == 2
    assert "--size and --network-size apply to checkpoints" in capsys.readouterr().err
