import json

from anomask.evaluation.output_files import write_json, write_text


def test_json_writes_nan_as_null_and_text_replaces_whole_files(tmp_path):
    path = write_json(
        tmp_path / "out" / "metrics.json", {"ap": 0.5, "ppv": float("nan"), "per_tau": [1.0, float("nan")]}
    )
    assert json.loads(path.read_text()) == {"ap": 0.5, "ppv": None, "per_tau": [1.0, None]}
    write_text(tmp_path / "report.md", "old")
    write_text(tmp_path / "report.md", "# new\n")
    assert (tmp_path / "report.md").read_text() == "# new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "report.md"]
