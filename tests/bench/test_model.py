import pytest

from anomask.cli import main


def test_bench_model_prints_latency_and_memory(capsys):
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
            ]
        )
        == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("small")]
    assert [row.split()[2] for row in rows] == ["64x64"]
    median_ms, peak_mib = float(rows[0].split()[4]), float(rows[0].split()[7])
    assert median_ms > 0 and peak_mib > 0


def test_bench_model_rejects_sizes_that_are_not_multiples_of_32(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "model", "--resolutions", "100x200"])
    assert exit_.value.code == 2
    assert "multiples of 32" in capsys.readouterr().err
