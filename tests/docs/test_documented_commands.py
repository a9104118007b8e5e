"""Every ``anomask ...`` command the user docs show (README.md, docs/*.md) is tested, so a
wrong command in the docs fails the suite.

- Commands in code blocks are parsed by the real command line (unknown options, bad values,
  missing arguments fail), and paths to trained models must follow the training layout
  (``OUT/<stage>/final/model.safetensors`` with a real stage name).
- The walkthrough's commands (README.md, between ``<!-- walkthrough -->`` markers) and the
  commands after it run for real, in order, in a temporary folder, on tiny sizes: fewer and
  smaller frames, a tiny network, one iteration. The ROS node, ``bag play`` and ``bag record``
  need a ROS graph and are only parsed (tests/ros runs them).
- Commands shown inline (in backticks) run ``--help`` of their subcommand, and every option
  they name must be in it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from anomask.cli import build_parser, main
from anomask.training.recipes import available_recipes, load_recipe

ROOT = Path(__file__).parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
NESTED = {"bag", "bench", "data"}
"""Commands whose first argument is a subcommand."""


@dataclass(frozen=True)
class DocCommand:
    where: str
    """``FILE:LINE``."""
    argv: tuple[str, ...]
    """The arguments after ``anomask``."""
    inline: bool
    walkthrough: bool

    @property
    def subcommand(self) -> tuple[str, ...]:
        return self.argv[:2] if self.argv[0] in NESTED else self.argv[:1]

    def __str__(self) -> str:
        return f"{self.where}: anomask {shlex.join(self.argv)}"


def _anomask_argv(words: list[str]) -> list[str] | None:
    """The arguments of an ``anomask`` call in a shell command, or None for another program
    (``VAR=value`` prefixes, ``torchrun ... -m anomask`` and ``python -m anomask`` included)."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    for end in ("&", "&&", "|", ";"):
        if end in words:
            words = words[: words.index(end)]
    if words and words[0] == "anomask":
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "anomask" and words[0] in ("torchrun", "python", "python3"):
            return words[i + 2 :]
    return None


def _synopsis(text: str) -> str:
    """A synopsis as a command: ``ROOT[,KEY=VALUE]`` -> ``ROOT``; ``[--seed N]`` -> ``--seed N``;
    ``...`` and ``[options]`` go."""
    text = re.sub(r"(?<=\S)\[[^\[\] ]*\]", "", text)
    return re.sub(r"\.\.\.|…|\[|\]", " ", text).replace(" options ", " ")


SHELL = {"", "bash", "sh", "shell", "console"}
"""Code blocks that hold commands (not ``python``, ``json``, ``yaml``)."""


def documented_commands() -> list[DocCommand]:
    commands = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        fenced = walkthrough = False
        shell = True
        pending, start = "", 0
        for number, line in enumerate(lines, 1):
            if line.strip() == "<!-- walkthrough -->":
                walkthrough = True
            elif line.strip() == "<!-- /walkthrough -->":
                walkthrough = False
            if line.startswith("```"):
                fenced = not fenced
                shell = line[3:].strip() in SHELL
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            if not fenced:
                for span in re.findall(r"`([^`]*\banomask [a-z][^`]*)`", line):
                    if "|" in span or "NAME" in span:
                        continue  # a list of subcommands (``bench NAME``, ``synth | stats``), not a command
                    argv = _anomask_argv(shlex.split(_synopsis(span)))
                    if argv and any(word.startswith("--") for word in argv):  # not a mere mention
                        commands.append(DocCommand(where, tuple(argv), True, False))
                continue
            if not shell:
                continue
            if not pending:
                start = number
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            text, pending = pending, ""
            if not re.search(r"\banomask\b", text):
                continue  # another program, or a listing
            argv = _anomask_argv(shlex.split(_synopsis(text), comments=True))
            if argv:
                commands.append(DocCommand(f"{path.relative_to(ROOT)}:{start}", tuple(argv), False, walkthrough))
    return commands


COMMANDS = documented_commands()
BLOCKS = [c for c in COMMANDS if not c.inline]
INLINE = [c for c in COMMANDS if c.inline]
WALKTHROUGH_FILE = "README.md"
RUNS = [c for c in BLOCKS if c.where.startswith(WALKTHROUGH_FILE)]
"""README.md's code blocks: the walkthrough and the commands after it, run in order."""
NEEDS_ROS = {("bag", "play"), ("bag", "record")}
"""Only parsed here (test_documented_command_parses): they need a ROS graph, run in tests/ros."""
RUN_HERE = [c for c in RUNS if c.subcommand not in NEEDS_ROS]


def _tiny(command: DocCommand, tiny_settings: list[str]) -> list[str] | None:
    """The command on tiny sizes, or None where it is only parsed."""
    argv = list(command.argv)
    if command.subcommand in NEEDS_ROS:
        return None
    if command.subcommand == ("data", "synth"):
        return argv + ["--train", "4", "--val", "2", "--test", "2", "--anomaly-val", "2", "--size", "64x128"]
    if command.subcommand == ("train",) and "--recipe" in argv:
        sets = [word for setting in tiny_settings for word in ("--set", setting)]
        return argv + sets + ["--set", "validation.max_images=1", "--iterations", "1", "--no-progress"]
    if command.subcommand == ("eval",):
        return argv + ["--limit", "2", "--panels", "1", "--no-progress"]  # 2: one per calibration half
    if command.subcommand == ("export",):
        return argv + ["--check-frames", "1"]
    return argv


@dataclass
class Ran:
    code: int
    output: str


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory, tiny_settings) -> dict[str, Ran]:
    """README.md's commands run in order in one temporary folder (each sees what the earlier
    ones wrote), on tiny sizes."""
    folder = tmp_path_factory.mktemp("walkthrough")
    results: dict[str, Ran] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for command in RUNS:
            argv = _tiny(command, tiny_settings)
            if argv is None:
                continue
            output = io.StringIO()
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                try:
                    code = main(argv)
                except SystemExit as exit_:
                    code = exit_.code
            results[str(command)] = Ran(code, output.getvalue())
    results["folder"] = Ran(0, str(folder))
    return results


def _parse_error(argv: list[str]) -> str | None:
    """Parse with the real command line; argparse's error (or None)."""
    output = io.StringIO()
    with contextlib.redirect_stderr(output), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser(argv).parse_args(argv)
        except SystemExit as exit_:
            return output.getvalue() or f"exit {exit_.code}"
    return None


STAGES = {stage.name for name in available_recipes() for stage in load_recipe(name).stages}
_MODEL = re.compile(r"(?:^|/)runs/[^/]+/(?P<rest>.+)")
_TRAINED = re.compile(r"(?P<stage>[^/]+)/(?:final|best|checkpoints/iter_\d{8})/model\.safetensors")
_CHECKPOINT_DIR = re.compile(r".*/(?P<stage>[^/]+)/checkpoints/iter_\d{8}/?")


def layout_problems(argv: list[str]) -> list[str]:
    """Paths a documented command names that training never writes."""
    problems = []
    for word in argv:
        match = _MODEL.search(word)
        if match and word.endswith(".safetensors"):
            trained = _TRAINED.fullmatch(match["rest"])
            if not trained or trained["stage"] not in STAGES:
                problems.append(
                    f"{word}: training writes OUT/<stage>/final/model.safetensors (stages: {sorted(STAGES)})"
                )
    if argv[:1] == ["train"] and "--resume" in argv:
        i = argv.index("--resume")
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
        if value is not None and not _CHECKPOINT_DIR.fullmatch(value):
            problems.append(f"--resume {value}: takes a checkpoint folder OUT/<stage>/checkpoints/iter_NNNNNNNN")
        if "--out" not in argv:
            problems.append("--resume needs --out (the run's folder)")
    return problems


def test_the_docs_show_commands():
    assert len(BLOCKS) >= 30 and len(INLINE) >= 10
    assert {c.argv[0] for c in BLOCKS} >= {"data", "train", "eval", "export", "bag"}
    walk = [c.subcommand for c in BLOCKS if c.walkthrough]
    assert walk[:6] == [("data", "synth"), ("train",), ("train",), ("eval",), ("export",), ("bag", "write")]


@pytest.mark.parametrize("command", BLOCKS, ids=str)
def test_documented_command_parses(command):
    error = _parse_error(list(command.argv))
    assert error is None, f"{command}\n{error}"
    assert layout_problems(list(command.argv)) == [], str(command)


def test_wrong_commands_of_issue_17_would_fail():
    """The deployment section's old commands: caught by the checks above."""
    assert layout_problems(["train", "--recipe", "mask2anomaly", "--resume", "runs/m2a"]) == [
        "--resume runs/m2a: takes a checkpoint folder OUT/<stage>/checkpoints/iter_NNNNNNNN",
        "--resume needs --out (the run's folder)",
    ]
    assert layout_problems(["export", "runs/m2a/model.safetensors"])
    assert _parse_error(["export", "m.safetensors", "--network-size", "33", "65"])


def _help(subcommand: tuple[str, ...]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
        main([*subcommand, "--help"])
    return output.getvalue()


@pytest.mark.parametrize("command", INLINE, ids=str)
def test_inline_command_options_exist(command):
    text = _help(command.subcommand)
    for word in command.argv:
        option = word.split("=")[0]
        if option.startswith("--"):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{command}: no {option}"


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_HERE, ids=str)
def test_readme_command_runs(command, walkthrough):
    ran = walkthrough[str(command)]
    assert ran.code == 0, f"{command}\n{ran.output[-3000:]}"


@pytest.mark.slow
def test_walkthrough_writes_what_its_table_says(walkthrough):
    """Every path the walkthrough table names (``data/…``, ``runs/…``, ``eval/…``, ``bag/…``,
    ``model.onnx``) exists after the walkthrough ran."""
    text = (ROOT / WALKTHROUGH_FILE).read_text()
    table = text[text.index("<!-- /walkthrough -->") :].split("\n\n", 2)[1]
    named = set(re.findall(r"`((?:data|runs|eval|bag)/[^`\s]*|model\.onnx)`", table))
    folder = Path(walkthrough["folder"].output)
    assert len(named) >= 6
    missing = sorted(p for p in named if not (folder / p.replace("iter_*/", "")).exists())
    assert missing == [], os.listdir(folder)
