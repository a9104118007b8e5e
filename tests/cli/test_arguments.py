"""Bad numbers on the command line end with one usage line and exit 2 before any work."""

import pytest

from anomask.cli import main


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--iterations", "-5"], "argument --iterations: -5: must be at least 1"),
        (["train", "--iterations", "0"], "argument --iterations: 0: must be at least 1"),
        (["train", "--iterations", "1.5"], "argument --iterations: '1.5' is not a whole number"),
        (["bag", "write", "BAG", "--images", "IMAGES", "--limit", "-1"], "argument --limit: -1: must be at least 1"),
        (["bag", "write", "BAG", "--images", "IMAGES", "--limit", "0"], "argument --limit: 0: must be at least 1"),
        (
            ["export", "CKPT.safetensors", "--network-size", "33", "65"],
            "argument --network-size: 33: must be a positive multiple of 32",
        ),
        (["export", "CKPT.safetensors", "--network-size", "0", "64"], "must be a positive multiple of 32"),
        (["export", "CKPT.safetensors", "--batch", "0"], "argument --batch: 0: must be at least 1"),
    ],
)
def test_bad_numbers_are_refused_before_any_work(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].endswith(message) and error[0].startswith("usage: anomask")
    assert not any(tmp_path.iterdir())  # nothing written


def test_iterations_set_as_a_setting_are_checked_too(capsys, tmp_path):
    assert main(["train", "--set", "solver.iterations=-5", "--out", str(tmp_path / "run")]) == 2
    assert "solver.iterations: must be at least 1, got -5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_good_values_pass(tmp_path):
    from anomask.cli import build_parser

    argv = ["export", "CKPT.safetensors", "--network-size", "128", "256", "--batch", "2"]
    args = build_parser(argv).parse_args(argv)
    assert args.network_size == [128, 256] and args.batch == 2
