import subprocess
import sys

from anomask.cli import BENCHMARKS, COMMANDS, main


def test_help_lists_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in out
    assert "bench" in out


def test_bench_help_lists_every_benchmark(capsys):
    try:
        main(["bench", "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    for command in BENCHMARKS:
        assert command.name in out


def test_installed_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "anomask", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("anomask ")


def test_unknown_command_fails_with_usage(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_recorded_command_quotes_arguments(monkeypatch, tmp_path, capsys):
    from anomask import cli

    (tmp_path / "echo_command.py").write_text(
        "def add_arguments(parser):\n    parser.add_argument('words', nargs='*')\n\n"
        "def run(args):\n    print(args.command_line)\n    return 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMANDS", (cli.Command("echo", "echo_command", "test"),))
    assert cli.main(["echo", "a b", "c"]) == 0
    assert capsys.readouterr().out.strip() == "anomask echo 'a b' c"
