"""An output folder that cannot be written is refused by every command that writes one: a
one-line error naming the folder, exit 2, before any work (issue 17: a raw traceback, after
export's 15 s of work). Inputs here do not exist: a command that looked at them first would
fail with another message."""

import os

import pytest

from anomask.cli import main

COMMANDS = {
    "data synth": lambda out: ["data", "synth", "--out", str(out)],
    "data sheet": lambda out: ["data", "sheet", "no-dataset", "--out", str(out / "sheet.png")],
    "train": lambda out: ["train", "--recipe", "closed-set", "--preset", "small", "--out", str(out)],
    "eval": lambda out: ["eval", "no-model.safetensors", "--out", str(out)],
    "export": lambda out: ["export", "no-model.safetensors", "--out", str(out / "model.onnx")],
    "export --engine": lambda out: ["export", str(out / "model.onnx"), "--engine"],
    "bag write": lambda out: ["bag", "write", str(out / "bag"), "--images", "no-images"],
    "bag eval": lambda out: ["bag", "eval", "no-bag", "--offline", "--model", "no-model.onnx", "--out", str(out)],
}


def refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_folder_under_a_file_is_refused_first(command, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder")
    out = tmp_path / "file.txt" / "sub"
    line = refused(COMMANDS[command](out), capsys)
    assert f"{tmp_path / 'file.txt'} is a file, not a folder" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_folder_is_refused_first(command, tmp_path, capsys, monkeypatch):
    # Root (these tests' user) may write into a chmod 0555 folder; deny it as the kernel would
    # for anyone else, or on a read-only file system.
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, flags: False if os.fspath(path) == str(read_only) else real_access(path, flags)
    )
    line = refused(COMMANDS[command](read_only), capsys)
    assert "is not writable" in line and str(read_only) in line


@pytest.mark.parametrize("command", ["data sheet", "export"])
def test_a_folder_where_the_output_file_goes_is_refused_first(command, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "sheet.png").mkdir(parents=True)
    (out / "model.onnx").mkdir()
    line = refused(COMMANDS[command](out), capsys)
    assert line.endswith("is a directory, expected a file") and str(out) in line
