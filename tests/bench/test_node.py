"""``anomask bench node`` runs end to end (node process, closed loop) on the small model and
prints its table; numbers are not asserted (benchmarks only print)."""

from __future__ import annotations

import contextlib
import io
import json

from anomask.cli import main


def test_bench_node_prints_latency_stages_and_overhead(small_model, tmp_path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(
            [
                "bench",
                "node",
                "--model",
                str(small_model.onnx),
                "--size",
                "64x128",
                "--frames",
                "3",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--encoding",
                "rgb8",
                "--out",
                str(tmp_path / "node.json"),
            ]
        )
    text = out.getvalue()
    assert status == 0, text
    for line in (
        "end to end (pub -> sub)",
        "node inference",
        "node overhead",
        "transport (e2e - node total)",
        "% of inference (target <= 5 %)",
    ):
        assert line in text, text
    record = json.loads((tmp_path / "node.json").read_text())
    assert record["benchmark"] == "node" and set(record["results"]["node_ms"]) >= {"inference", "overhead"}
