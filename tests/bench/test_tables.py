"""``anomask bench tables``: the docs' benchmark tables come from the result files."""

import json
from pathlib import Path

from anomask.bench.tables import RESULTS, stale_pages
from anomask.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECORD = {
    "benchmark": "node",
    "date": "2025-01-02T03:04:05+00:00",
    "commit": "abc1234",
    "machine": {
        "cpu": "Test CPU",
        "cores": 2,
        "torch_threads": 1,
        "gpu": None,
        "python": "3.11.9",
        "torch": "2.14.1",
    },
    "command": "anomask bench node --out docs/results/node.json",
    "results": {"end_to_end_ms": [40.0, 52.5], "node_ms": {"inference": [30.25, 41.0], "overhead": [0.75, 1.5]}},
}
PAGE = """# Latency

<!-- bench-table: node -->
old numbers
<!-- /bench-table -->

<!-- bench-table: model -->
<!-- /bench-table -->
"""


def test_every_table_in_the_docs_is_what_the_result_files_give():
    assert stale_pages(ROOT) == [], "run: anomask bench tables"


def test_tables_are_rendered_from_the_result_files_and_a_stale_one_fails_the_check(tmp_path, capsys):
    (tmp_path / RESULTS).mkdir(parents=True)
    (tmp_path / RESULTS / "node.json").write_text(json.dumps(RECORD))
    (tmp_path / "docs" / "latency.md").write_text(PAGE)
    (tmp_path / "README.md").write_text("no tables here\n")
    assert main(["bench", "tables", "--root", str(tmp_path), "--check"]) == 1
    assert "latency.md" in capsys.readouterr().out

    assert main(["bench", "tables", "--root", str(tmp_path)]) == 0
    page = (tmp_path / "docs" / "latency.md").read_text()
    assert page == (
        "# Latency\n\n<!-- bench-table: node -->\n"
        "| stage | p50 ms | p99 ms |\n|---|---|---|\n"
        "| end to end (publisher -> subscriber) | 40.0 | 52.5 |\n"
        "| node inference | 30.2 | 41.0 |\n"
        "| node overhead | 0.75 | 1.5 |\n\n"
        "measured 2025-01-02, commit abc1234, Test CPU, 2 cores, 1 torch threads, no GPU, Python 3.11.9, "
        "torch 2.14.1; `anomask bench node --out docs/results/node.json`\n"
        "<!-- /bench-table -->\n\n"
        "<!-- bench-table: model -->\n"
        "_Not measured yet_ (`anomask bench model --out docs/results/model.json`).\n"
        "<!-- /bench-table -->\n"
    )
    assert main(["bench", "tables", "--root", str(tmp_path), "--check"]) == 0

    remeasured = {**RECORD, "results": {**RECORD["results"], "end_to_end_ms": [41.0, 52.5]}}
    (tmp_path / RESULTS / "node.json").write_text(json.dumps(remeasured))
    assert main(["bench", "tables", "--root", str(tmp_path), "--check"]) == 1


def _pixel(ap):
    return {"ap": ap, "fpr95": 0.5, "auroc": 0.75}


def test_the_quality_models_table_is_made_from_the_quality_result_file(tmp_path):
    anomaly = {
        "synthetic-anomaly": {"uno": _pixel(0.6)},
        "synthetic-anomaly (seen)": {"uno": _pixel(0.8)},
        "synthetic-anomaly (unseen)": {"uno": _pixel(0.4)},
    }
    datasets = {"synthetic-val": {"semantic": {"miou": 0.7}}, "synthetic-anomaly": {"anomaly": anomaly}}
    results = {"claims": [], "models": {"m2f-uno": {"metrics": {"datasets": datasets}}}}
    (tmp_path / RESULTS).mkdir(parents=True)
    (tmp_path / RESULTS / "quality.json").write_text(json.dumps({**RECORD, "results": results}))
    (tmp_path / "README.md").write_text("<!-- bench-table: quality-models -->\n<!-- /bench-table -->\n")
    assert main(["bench", "tables", "--root", str(tmp_path)]) == 0
    lines = (tmp_path / "README.md").read_text().splitlines()
    assert lines[1] == "| model | score | AP | AP seen | AP unseen | FPR95 unseen | AUROC unseen | mIoU |"
    # uno_unc, uno_no and msp were not in the file: their numbers do not exist
    assert lines[3:7] == [
        "| m2f-uno | uno | 60.0 | 80.0 | 40.0 | 50.0 | 75.0 | 70.0 |",
        "| m2f-uno | uno_unc | n/a | n/a | n/a | n/a | n/a | 70.0 |",
        "| m2f-uno | uno_no | n/a | n/a | n/a | n/a | n/a | 70.0 |",
        "| m2f-uno | msp | n/a | n/a | n/a | n/a | n/a | 70.0 |",
    ]
