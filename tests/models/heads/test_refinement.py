"""The refinement mask of Mask2Anomaly (Rai et al., 2024), eq. 15, on hand-built masks."""

import torch

from anomask.models.heads import anomaly_score, claimed_pixels, refine, refinement_class_filter
from anomask.models.heads.scores import ANOMALY_SCORES

SKY_MASK = [[0.9, 0.6, 0.4], [0.2, 0.7, 0.1]]
ROAD_MASK = [[0.1, 0.1, 0.8], [0.9, 0.1, 0.1]]
SHY_SKY_MASK = [[0.1, 0.1, 0.1], [0.1, 0.1, 0.9]]


def test_confident_stuff_masks_claim_pixels_road_and_unsure_masks_do_not(
    metadata_factory, probs_to_logits, assignments_to_logits
):
    metadata = metadata_factory(3)  # road, sky, car: refinement classes = stuff except road = [sky]
    assert metadata.refinement_ids() == [1]
    logits = probs_to_logits(
        [
            [0.01, 0.96, 0.01, 0.02],  # sky, 0.96 > 0.95: refines
            [0.97, 0.01, 0.01, 0.01],  # road: never refines
            [0.02, 0.94, 0.02, 0.02],
        ]
    )  # sky but 0.94: not confident
    masks = assignments_to_logits([SKY_MASK, ROAD_MASK, SHY_SKY_MASK])
    lut = torch.zeros(4, dtype=torch.bool)
    lut[metadata.refinement_ids()] = True
    class_filter = refinement_class_filter(logits.softmax(-1), lut, 0.95)
    assert class_filter.tolist() == [[True, False, False]]
    claimed = claimed_pixels(masks, class_filter)
    assert claimed[0].tolist() == [[True, True, False], [False, True, False]]  # sky mask > 0.5

    eam = anomaly_score("eam", logits, masks, metadata)
    refined = refine(eam, claimed, ANOMALY_SCORES["eam"], num_masks=3, num_classes=3)
    assert refined[0][claimed[0]].tolist() == [-3.0, -3.0, -3.0]  # EAM's floor: -N
    assert torch.equal(refined[~claimed], eam[~claimed])
    assert bool(refined[claimed].amax() < eam[~claimed].amin())


def test_metadata_refinement_classes_override_the_default(metadata_factory, probs_to_logits, assignments_to_logits):
    metadata = metadata_factory(3, refinement_classes=(0,))
    lut = torch.zeros(4, dtype=torch.bool)
    lut[metadata.refinement_ids()] = True
    logits = probs_to_logits([[0.01, 0.96, 0.01, 0.02], [0.97, 0.01, 0.01, 0.01]])
    claimed = claimed_pixels(
        assignments_to_logits([SKY_MASK, ROAD_MASK]), refinement_class_filter(logits.softmax(-1), lut, 0.95)
    )
    assert claimed[0].tolist() == [[False, False, True], [True, False, False]]  # now the road mask


def test_unbounded_score_takes_the_image_minimum(metadata_factory):
    torch.manual_seed(0)
    score = torch.randn(2, 4, 5)
    claimed = torch.rand(2, 4, 5) > 0.5
    refined = refine(score, claimed, ANOMALY_SCORES["eam_energy"], num_masks=3, num_classes=3)
    for b in range(2):
        assert torch.equal(refined[b][claimed[b]], torch.full_like(refined[b][claimed[b]], score[b].min().item()))
