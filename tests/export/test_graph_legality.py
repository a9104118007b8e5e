"""Every graph variant the suite exports passes the TensorRT parser check (operators, element
types, static shapes; ``export/op_support.py``).

``export_onnx`` runs the check before it writes anything, so every exported graph of the suite
is checked as it is made; this file names them: the shared whole graphs (tiny Mask2Former with
resize, refinement, BGR, batch 2; the small model; the stand-in with static and dynamic batch
and float16 anomaly), their float16 and Q/DQ derivatives, and the heads for every anomaly score,
refinement, both upsampling modes and the per-pixel model's heads: one
heads-only graph holding them all (one export instead of one per variant)."""

import onnx
import pytest
import torch
from torch import nn

from anomask.export.graph import order_outputs
from anomask.export.onnx_export import example_frames, read_export_info_file
from anomask.export.op_support import tensorrt_problems
from anomask.export.precision import quantize_int8, to_mixed_float16
from anomask.models.heads import ANOMALY_SCORES, FusedHeads, PerPixelHeads

from ..conftest import tiny_metadata

UNO_SCORES = {name for name, score in ANOMALY_SCORES.items() if score.needs_negative}


class EveryHead(nn.Module):
    """A ``FusedHeads`` per score (every other one refined), one upsampling the masks, and
    ``PerPixelHeads``."""

    def __init__(self) -> None:
        super().__init__()
        self.names, heads = [], []
        for index, score in enumerate(ANOMALY_SCORES):
            refine = index % 2 == 1  # refinement on every other score: its nodes do not depend on the score
            metadata = tiny_metadata(negative_class=score in UNO_SCORES)
            self.names.append(f"{score}{'_refined' if refine else ''}")
            heads.append(FusedHeads(metadata, score=score, refine=refine, output_size=(16, 24)))
        self.names.append("eam_masks")
        heads.append(FusedHeads(tiny_metadata(), score="eam", output_size=(16, 24), upsample="masks"))
        self.fused = nn.ModuleList(heads)
        self.per_pixel = PerPixelHeads(tiny_metadata(meta_arch="per_pixel"), output_size=(16, 24))

    def forward(self, logits_k1, logits_k2, pred_masks, threshold):
        out = {}
        for index, (name, heads) in enumerate(zip(self.names, self.fused)):
            logits = logits_k2 if heads.metadata.architecture.negative_class else logits_k1
            # Masks offset per head: no two heads compute the same tensor, which the exporter
            # would merge and hand out through Identity nodes that a single-head graph has not.
            result = heads(logits, pred_masks + index, threshold)
            out.update((f"{name}.{k}", v) for k, v in order_outputs(result, torch.float32).items())
        sem_logits, outlier_logits = pred_masks[:, :3], pred_masks[:, 3:4]
        per_pixel = order_outputs(self.per_pixel(sem_logits, outlier_logits, threshold), torch.float32)
        out.update((f"per_pixel.{k}", v) for k, v in per_pixel.items())
        return out


@pytest.mark.slow
def test_every_head_variant_passes():
    generator = torch.Generator().manual_seed(0)
    inputs = (
        torch.randn(2, 6, 4, generator=generator),
        torch.randn(2, 6, 5, generator=generator),
        torch.randn(2, 6, 8, 12, generator=generator),
        torch.tensor(-0.5),
    )
    program = torch.onnx.export(EveryHead().eval(), inputs, dynamo=True, opset_version=18, verbose=False)
    assert tensorrt_problems(program.model_proto) == []


@pytest.mark.parametrize("fixture", ["standin_onnx", "standin_dynamic", "small_model", "exported"])
def test_every_exported_graph_passes(fixture, request):
    exported = request.getfixturevalue(fixture)
    path = exported[0] if isinstance(exported, tuple) else exported.onnx
    model = onnx.load(str(path))
    assert tensorrt_problems(model) == []
    assert tensorrt_problems(to_mixed_float16(model)) == []
    settings = read_export_info_file(path).settings
    batches = [example_frames(settings, seed=seed) for seed in range(2)]
    assert tensorrt_problems(quantize_int8(model, batches)) == []
