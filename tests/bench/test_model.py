import json

import pytest

from anomask.cli import main


def test_bench_model_prints_latency_and_memory_and_writes_the_result_file(capsys, tmp_path):
    assert (
        main(
            [
                "bench",
                "model",
                "--presets",
                "small",
                "--resolutions",
                "64x64",
                "--iterations",
                "1",
                "--warmup",
                "0",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--out",
                str(tmp_path / "model.json"),
            ]
        )
        == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("small")]
    assert [row.split()[2] for row in rows] == ["64x64"]
    median_ms, peak_mib = float(rows[0].split()[4]), float(rows[0].split()[7])
    assert median_ms > 0 and peak_mib > 0
    record = json.loads((tmp_path / "model.json").read_text())
    assert set(record) == {"benchmark", "date", "commit", "machine", "command", "results"}
    assert record["benchmark"] == "model" and record["command"].startswith("anomask bench model --presets small")
    assert set(record["machine"]) == {"cpu", "cores", "torch_threads", "gpu", "python", "torch"}
    assert record["machine"]["torch_threads"] == 1 and record["date"].endswith("+00:00")
    [row] = record["results"]["rows"]
    assert row["preset"] == "small" and row["input"] == "64x64" and f"{row['median_ms']:.1f}" == f"{median_ms:.1f}"


def test_bench_model_rejects_sizes_that_are_not_multiples_of_32(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "model", "--resolutions", "100x200"])
    assert exit_.value.code == 2
    assert "multiples of 32" in capsys.readouterr().err
