"""``FusedHeads(protocol="official")`` against independent re-statements of each official
formula (a few lines each, written from the official code named in each test)."""

import pytest
import torch
import torch.nn.functional as F

from anomask.errors import AnomaskError
from anomask.models.classes import CITYSCAPES
from anomask.models.config import ModelConfig
from anomask.models.heads import FusedHeads
from anomask.models.heads.official import flip_average, official_refinement_ids
from anomask.models.metadata import ModelMetadata

N, H, W, OUT = 6, 4, 6, (9, 13)
ZERO = torch.zeros(())


def cityscapes(negative: bool = False) -> ModelMetadata:
    classes = CITYSCAPES.classes
    return ModelMetadata(
        classes=classes, architecture=ModelConfig.small(num_classes=len(classes), negative_class=negative)
    )


def random_outputs(metadata: ModelMetadata, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(1, N, metadata.architecture.num_outputs, generator=generator, dtype=torch.float64)
    masks = 4 * torch.randn(1, N, H, W, generator=generator, dtype=torch.float64)
    return logits, masks


def masks_first(masks: torch.Tensor) -> torch.Tensor:
    """Mask2Former's ``MaskFormer.forward``: ``F.interpolate(mask_pred_results, size, bilinear,
    align_corners=False)`` before ``semantic_inference``; then ``sigmoid``."""
    return F.interpolate(masks, size=OUT, mode="bilinear", align_corners=False)[0].sigmoid()


def official(metadata: ModelMetadata, score: str, logits, masks, refine: bool = False) -> torch.Tensor:
    heads = FusedHeads(metadata, score=score, refine=refine, output_size=OUT, protocol="official").double()
    return heads(logits, masks, ZERO)["anomaly"][0].double()


def test_eam_is_ood_detection_evaluation_process():
    # Open-set-M2F mask2former/evaluation/ood_detection_evaluation.py, process():
    # 1 - sum_q sigmoid(mask_q) * max(softmax(cls_q)[:-1]).
    metadata = cityscapes()
    logits, masks = random_outputs(metadata)
    m = masks_first(masks)
    max_p = logits[0].softmax(-1)[..., :-1].max(1)[0]
    expected = 1 - (m * max_p.view(-1, 1, 1)).sum(0)
    torch.testing.assert_close(official(metadata, "eam", logits, masks) + 1, expected)


def test_uno_is_ood_detection_evaluation_uno_process():
    # Open-set-M2F mask2former/evaluation/ood_detection_evaluation_UNO.py, process():
    # s_x = -softmax[..., -2] + max(softmax[..., :-2]); score = -sum_q m_q s_x.
    metadata = cityscapes(negative=True)
    logits, masks = random_outputs(metadata, seed=1)
    probs = logits[0].softmax(-1)
    s_x = -probs[..., -2] + probs[..., :-2].max(1)[0]
    expected = -(masks_first(masks) * s_x.view(-1, 1, 1)).sum(0)
    torch.testing.assert_close(official(metadata, "uno", logits, masks), expected)


def test_rba_is_support_get_rba():
    # RbA support.py, get_RbA(): -tanh(sem_seg).sum(0), sem_seg from Mask2Former's
    # semantic_inference: einsum("qc,qhw->chw", softmax(cls)[..., :-1], sigmoid(masks)).
    metadata = cityscapes()
    logits, masks = random_outputs(metadata, seed=2)
    sem_seg = torch.einsum("qc,qhw->chw", logits[0].softmax(-1)[..., :-1], masks_first(masks))
    torch.testing.assert_close(official(metadata, "rba", logits, masks), -sem_seg.tanh().sum(0))


def mask2anomaly_view(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """One view of Mask2Anomaly's anomaly_utils/anomaly_inference.py (__main__) on the output of
    its MaskFormer.semantic_inference (mask2former/maskformer_model.py)."""
    cls, m = logits[0], masks_first(masks)
    semseg = torch.einsum("qc,qhw->chw", cls.softmax(-1)[..., :-1], m)
    scores, labels = cls.softmax(-1).max(-1)
    keep = labels.ne(19) & (scores > 0.95) & (labels < 11) & (labels > 1)
    sem_seg = torch.cat((semseg, scores[keep].view(-1, 1, 1) * m[keep]), 0)
    # the code's predictions_naa[0:19] slices the batch axis: the max runs over every channel
    out = 1 - sem_seg.max(0)[0]
    if sem_seg[19:].shape[0] > 1:
        claimed = (sem_seg[19:].max(0)[0] >= 0.5).double()
        out = out * (1 - claimed)
    return out


def confident_stuff(logits: torch.Tensor, queries: list[int], label: int) -> torch.Tensor:
    """``logits`` with ``queries`` made 0.99-confident of ``label``."""
    logits = logits.clone()
    for q in queries:
        logits[0, q] = -10.0
        logits[0, q, label] = 10.0
    return logits


@pytest.mark.parametrize("passing", [[], [0], [0, 3], [0, 3, 5]])
def test_mask2anomaly_refinement_is_anomaly_inference(passing):
    # Building (2) masks pass; the two-mask rule refines only with two or more.
    metadata = cityscapes()
    logits, masks = random_outputs(metadata, seed=3)
    logits = confident_stuff(logits, passing, 2)
    got = official(metadata, "msp", logits, masks, refine=True) + 1
    torch.testing.assert_close(got, mask2anomaly_view(logits, masks))
    if len(passing) >= 2:
        assert (got == 0).any()


def test_sidewalk_and_road_masks_never_refine():
    metadata = cityscapes()
    assert official_refinement_ids(metadata) == list(range(2, 11))
    logits, masks = random_outputs(metadata, seed=4)
    logits = confident_stuff(logits, [0, 1], 1)  # two confident sidewalk masks
    got = official(metadata, "msp", logits, masks, refine=True) + 1
    torch.testing.assert_close(got, mask2anomaly_view(logits, masks))
    assert not (got == 0).any()


def test_one_passing_mask_refines_by_default_but_not_officially():
    # The 1x1, two-query case: one confident building mask covering the pixel.
    metadata = cityscapes()
    logits = torch.full((1, 2, 20), -10.0, dtype=torch.float64)
    logits[0, 0, 2] = 10.0
    logits[0, 1, 19] = 10.0
    masks = torch.tensor([[[[5.0]], [[-5.0]]]], dtype=torch.float64)
    default = FusedHeads(metadata, score="msp", refine=True).double()(logits, masks, ZERO)["anomaly"]
    heads = FusedHeads(metadata, score="msp", refine=True, protocol="official").double()
    got = heads(logits, masks, ZERO)["anomaly"]
    assert default.item() == -2.0  # anomask: the floor -N
    sem_seg = torch.einsum("qc,qhw->chw", logits[0].softmax(-1)[..., :-1], masks[0].sigmoid())
    assert got.item() == pytest.approx(-sem_seg.max().item())  # official: not refined (one mask only)


def test_flip_average_is_anomaly_inference_mean():
    # anomaly_inference.py: outputs_lr = np.flip(outputs_lr, 1); (outputs_lr + outputs_na) / 2
    generator = torch.Generator().manual_seed(5)
    a, b = torch.rand(2, 3, 5, generator=generator)
    torch.testing.assert_close(flip_average(a, b), torch.from_numpy((a.numpy() + b.numpy()[:, ::-1]) / 2))


def test_official_differs_from_default_only_by_protocol():
    """Same scores up to the upsampling order: at the mask resolution the two agree."""
    metadata = cityscapes()
    logits, masks = random_outputs(metadata, seed=6)
    for score in ("eam", "rba", "msp"):
        default = FusedHeads(metadata, score=score).double()(logits, masks, ZERO)["anomaly"]
        official_out = FusedHeads(metadata, score=score, protocol="official").double()(logits, masks, ZERO)
        torch.testing.assert_close(official_out["anomaly"], default)


def test_only_mask2anomaly_has_an_official_refinement():
    with pytest.raises(AnomaskError, match="no official refinement"):
        FusedHeads(cityscapes(), score="rba", refine=True, protocol="official")
    with pytest.raises(AnomaskError, match="protocol must be one of"):
        FusedHeads(cityscapes(), protocol="paper")
