"""ONNX Runtime vs PyTorch for each anomaly score, on the fused heads alone.

The full graph is exported once (``exported`` fixture, EAM + refinement); the score is the
only part that changes between exports, so the scores are checked on one heads-only graph
holding a ``FusedHeads`` per score (one export instead of one per score: the dynamo exporter
takes seconds per graph on the CPU)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from anomask.export.graph import order_outputs
from anomask.export.parity import compare_outputs
from anomask.models.heads import FusedHeads, panoptic_images

from ..conftest import tiny_metadata

CASES = (
    ("eam", False, False),
    ("msp", False, False),
    ("rba", False, False),
    ("uno", False, True),
    ("eam", True, False),
)
"""(score, refine, K+2 model): UNO reads the negative class of a K+2 model."""


def _case_name(score, refine, negative):
    return f"{score}{'_refined' if refine else ''}"


class AllHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList(
            FusedHeads(tiny_metadata(negative_class=negative), score=score, refine=refine, output_size=(16, 24))
            for score, refine, negative in CASES
        )

    def forward(self, logits_k1, logits_k2, pred_masks, thresholds):
        out = {}
        for index, ((score, refine, negative), heads) in enumerate(zip(CASES, self.heads)):
            result = order_outputs(
                heads(logits_k2 if negative else logits_k1, pred_masks, thresholds[index]), torch.float32
            )
            out.update({f"{_case_name(score, refine, negative)}.{name}": value for name, value in result.items()})
        return out


@pytest.fixture(scope="module")
def parity():
    generator = torch.Generator().manual_seed(0)
    logits_k1 = 3 * torch.randn(2, 6, 4, generator=generator)
    logits_k2 = 3 * torch.randn(2, 6, 5, generator=generator)
    pred_masks = 4 * torch.randn(2, 6, 8, 12, generator=generator)
    module = AllHeads().eval()
    # Per score, a threshold between two score values near the median: open_set has known and
    # unknown pixels, and no pixel sits on the threshold (where float rounding may flip it).
    thresholds = []
    with torch.no_grad():
        for (_score, _refine, negative), heads in zip(CASES, module.heads):
            values = heads(logits_k2 if negative else logits_k1, pred_masks, torch.tensor(0.0))["anomaly"].unique()
            thresholds.append((values[len(values) // 2] + values[len(values) // 2 + 1]) / 2)
    inputs = (logits_k1, logits_k2, pred_masks, torch.stack(thresholds))
    with torch.no_grad():
        reference = {k: v.numpy() for k, v in module(*inputs).items()}
    program = torch.onnx.export(
        module,
        inputs,
        dynamo=True,
        opset_version=18,
        verbose=False,
        input_names=["logits_k1", "logits_k2", "pred_masks", "thresholds"],
        output_names=list(reference),
    )
    session = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(
        None, dict(zip(["logits_k1", "logits_k2", "pred_masks", "thresholds"], (t.numpy() for t in inputs)))
    )
    return reference, dict(zip([o.name for o in session.get_outputs()], values))


@pytest.mark.parametrize("score,refine,negative", CASES, ids=[_case_name(*c) for c in CASES])
def test_each_score_matches_pytorch(score, refine, negative, parity):
    prefix = _case_name(score, refine, negative) + "."
    reference, ours = ({k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)} for d in parity)
    assert reference["anomaly"].shape == (2, 16, 24)
    results = compare_outputs(reference, ours)
    assert all(r.passed for r in results), [r.line() for r in results]
    assert 0 < np.mean(ours["open_set"] == 254) < 1
    metadata = tiny_metadata(negative_class=negative)
    for method in ("closed-set", "mining"):
        np.testing.assert_array_equal(
            panoptic_images(ours, metadata, method), panoptic_images(reference, metadata, method)
        )
