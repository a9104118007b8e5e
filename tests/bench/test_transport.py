"""``anomask bench transport``: real driver and subscriber processes; their counts end up in the table."""

import json
import os

from anomask.bench.tables import render
from anomask.cli import main


def test_bench_transport_counts_the_frames_each_setting_delivers(tmp_path, capsys) -> None:
    out = tmp_path / "transport.json"
    domain = str(int(os.environ["ROS_DOMAIN_ID"]) + 100)  # its own domain, next to this process's
    args = ["bench", "transport", "--frames", "2", "--rate", "5", "--sizes", "64x48", "--domain", domain]
    assert main([*args, "--settings", "reliable:default", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["results"]["rows"] == [
        {"reliability": "reliable", "transport": "default", "both_sides": True, "received": {"64x48": 2}}
    ]
    assert "| reliable | default | 2 / 2 |" in render("transport", record)
    assert "reliable:default: {'64x48': 2} of 2 each" in capsys.readouterr().out
