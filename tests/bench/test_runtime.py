"""The runtime benchmark's pieces on the small stand-in graph (numbers are not asserted)."""

import math

import onnx
import onnxruntime as ort

from anomask.bench.runtime import (
    STAGES,
    BenchRow,
    format_row,
    measure_once,
    open_and_measure_memory,
    percentiles,
    split_graph,
    summary,
)
from anomask.export.onnx_export import example_frames


def test_graph_splits_where_the_heads_start(standin_onnx):
    path, network, metadata, settings = standin_onnx
    model = onnx.load(str(path))
    network_half, heads_half = split_graph(model)
    session = ort.InferenceSession(network_half.SerializeToString(), providers=["CPUExecutionProvider"])
    shapes = sorted(tuple(o.shape) for o in session.get_outputs())
    assert shapes == [(2, 5, 4), (2, 5, 8, 12)]  # pred_logits [B,N,C], pred_masks [B,N,H/4,W/4]
    assert [o.name for o in heads_half.graph.output] == [o.name for o in model.graph.output]
    assert "threshold" in [i.name for i in heads_half.graph.input]


def test_stage_times_for_one_graph_and_eager_backends(standin_onnx):
    path, network, metadata, settings = standin_onnx
    frames = example_frames(settings)
    rows = []
    for backend in ("onnxruntime", "pytorch"):
        runtime, split_time, peak_mb, kind = open_and_measure_memory(backend, path, network, metadata, settings, frames)
        times = [measure_once(runtime, frames, metadata, split_time) for _ in range(2)]
        assert all(not math.isnan(t[s]) and t[s] >= 0 for t in times for s in (*STAGES, "total"))
        assert kind == "process RSS added"
        stages = {s: percentiles([t[s] for t in times]) for s in (*STAGES, "total")}
        row = BenchRow(backend, settings.input_size, 2, 2, stages, 1.0, peak_mb)
        assert format_row(row).startswith(backend)
        rows.append(row)
    lines = summary(rows)
    assert any("ONNX Runtime / PyTorch eager latency" in line for line in lines)
    assert any(line.startswith("pytorch") and "heads" in line for line in lines)
