"""ONNX Runtime vs PyTorch for each anomaly score, on the fused heads alone.

The full graph is exported once (``exported`` fixture, EAM + refinement); the score is the
only part that changes between exports, so each score is checked on a heads-only graph
(exporting the whole network per score would cost a minute each on the CPU)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from anomask.export.graph import order_outputs
from anomask.export.onnx_export import _export
from anomask.export.export_info import ExportSettings
from anomask.export.parity import compare_outputs
from anomask.models.heads import FusedHeads, panoptic_images

from .conftest import tiny_metadata


class HeadsOnly(nn.Module):
    def __init__(self, heads):
        super().__init__()
        self.heads = heads

    def forward(self, pred_logits, pred_masks, threshold):
        return order_outputs(self.heads(pred_logits, pred_masks, threshold), torch.float32)


@pytest.mark.parametrize("score,refine,negative", [
    ("eam", False, False), ("msp", False, False), ("rba", False, False), ("uno", False, True), ("eam", True, False),
])
def test_each_score_matches_pytorch(score, refine, negative, tmp_path):
    metadata = tiny_metadata(negative_class=negative)
    heads = FusedHeads(metadata, score=score, refine=refine, output_size=(16, 24)).eval()
    generator = torch.Generator().manual_seed(0)
    pred_logits = 3 * torch.randn(2, 6, metadata.architecture.num_outputs, generator=generator)
    pred_masks = 4 * torch.randn(2, 6, 8, 12, generator=generator)
    # a threshold between two score values near the median: open_set has known and unknown
    # pixels, and no pixel sits on the threshold (where float rounding may flip it)
    with torch.no_grad():
        values = heads(pred_logits, pred_masks, torch.tensor(0.0))["anomaly"].unique()
    middle = len(values) // 2
    threshold = (values[middle] + values[middle + 1]) / 2
    settings = ExportSettings(input_size=(1, 1), network_size=(1, 1), output_size=(16, 24))
    module = HeadsOnly(heads).eval()
    with torch.no_grad():
        reference = {k: v.numpy() for k, v in module(pred_logits, pred_masks, threshold).items()}
    program = _export_heads(module, (pred_logits, pred_masks, threshold), list(reference), settings)
    session = ort.InferenceSession(program.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(None, {"pred_logits": pred_logits.numpy(), "pred_masks": pred_masks.numpy(), "threshold": threshold.numpy()})
    ours = dict(zip([o.name for o in session.get_outputs()], values))
    results = compare_outputs(reference, ours)
    assert all(r.passed for r in results), [r.line() for r in results]
    assert 0 < np.mean(ours["open_set"] == 254) < 1
    for method in (None, "mining"):
        np.testing.assert_array_equal(panoptic_images(ours, metadata, method), panoptic_images(reference, metadata, method))


def _export_heads(module, inputs, output_names, settings):
    import onnxscript  # noqa: F401  (the dynamo exporter needs it)

    program = torch.onnx.export(module, inputs, dynamo=True, opset_version=settings.opset, verbose=False,
                                input_names=["pred_logits", "pred_masks", "threshold"], output_names=output_names)
    return program.model_proto
