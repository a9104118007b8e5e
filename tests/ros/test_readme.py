"""The ROS package README (Autoware's package template) against the node's own tables.

Its parameter table is generated from ``anomask_ros.params.SPECS`` (the node's one parameter
table): the test fails when the README's block differs from ``parameter_table()``, so a new,
renamed or re-defaulted parameter cannot be left out of the docs. Regenerate the block with
``.venv/bin/python tests/ros/test_readme.py --write``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from anomask_ros import params

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "ros2_ws" / "src" / "anomask_ros" / "README.md"
LAUNCH = ROOT / "launch" / "anomask.launch.py"
BLOCK = re.compile(r"(<!-- params-table -->\n)(.*?)(<!-- /params-table -->)", re.DOTALL)


def type_name(value: object) -> str:
    """The ROS parameter type of a default value."""
    if isinstance(value, list):
        return type_name(value[0]) + "[]"
    return {bool: "bool", int: "integer", float: "double", str: "string"}[type(value)]


def _value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value else '""'
    return repr(value)


def _range(spec: params.Spec) -> str:
    if spec.choices:
        return ", ".join(spec.choices)
    if spec.low is not None:
        return f"{_value(spec.low)} .. {_value(spec.high)}"
    return ""


def _text(text: str) -> str:
    """Markdown table cell: angle brackets would read as HTML tags, a bar as a column."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def parameter_table(specs: tuple[params.Spec, ...] = params.SPECS) -> str:
    """The README's parameter table, one row per ``Spec``, in declaration order."""
    lines = [
        "| name | type | default | range / choices | run-time | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for spec in specs:
        cells = [
            f"`{spec.name}`",
            type_name(spec.default),
            f"`{_value(spec.default)}`",
            _range(spec),
            "" if spec.read_only else "yes",
            _text(spec.description),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    match = BLOCK.search(text)
    assert match, f"{README}: no <!-- params-table --> ... <!-- /params-table --> block"
    return match[2]


def test_parameter_table_is_the_nodes_spec_table() -> None:
    expected = parameter_table()
    assert readme_block(README.read_text()) == expected, (
        f"{README}: the parameter table differs from anomask_ros/params.py; run "
        "`.venv/bin/python tests/ros/test_readme.py --write`"
    )


def test_type_names_follow_the_defaults() -> None:
    assert [type_name(v) for v in ("", 1, 0.5, True, ["a"], [0.0, 1.0])] == [
        "string",
        "integer",
        "double",
        "bool",
        "string[]",
        "double[]",
    ]


def test_outputs_table_lists_every_output_topic() -> None:
    text = README.read_text()
    outputs = text[text.index("### Output") : text.index("## Parameters")]
    listed = set(re.findall(r"^\| `C/(\w+)`", outputs, re.MULTILINE))
    assert listed == set(params.OUTPUTS)


def test_launch_arguments_are_documented() -> None:
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DeclareLaunchArgument"
    }
    text = README.read_text()
    section = text[text.index("### Launch arguments") :]
    documented = set(re.findall(r"^\| `(\w+)`", section, re.MULTILINE))
    assert declared <= documented, f"launch arguments missing from {README}: {sorted(declared - documented)}"


def write() -> None:
    text = README.read_text()
    readme_block(text)
    README.write_text(BLOCK.sub(lambda m: m[1] + parameter_table() + m[3], text))
    print(f"rewrote the parameter table of {README}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: tests/ros/test_readme.py --write")
    write()
