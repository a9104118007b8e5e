import itertools

import pytest
import torch
import torch.nn.functional as F

from anomask.training.matcher import CostWeights, hungarian_match, matching_cost
from anomask.training.point_sampling import point_sample, uniform_points
from anomask.training.seeding import derived_generator


def _pair_cost(class_logits, mask_logits, label, target_mask, weights, coords):
    """One (query, segment) cost, written out from the definitions (no pairwise algebra)."""
    prob = class_logits.softmax(-1)[label]
    pred = point_sample(mask_logits[None, None], coords)[0, 0]
    tgt = point_sample(target_mask[None, None].float(), coords)[0, 0]
    bce = F.binary_cross_entropy_with_logits(pred, tgt)
    sig = pred.sigmoid()
    dice = 1 - (2 * (sig * tgt).sum() + 1) / (sig.sum() + tgt.sum() + 1)
    return -weights.cls * prob + weights.mask * bce + weights.dice * dice


@pytest.mark.parametrize("seed,queries,segments", [(0, 4, 2), (1, 5, 3), (2, 6, 4), (3, 5, 5), (4, 6, 1)])
def test_matcher_agrees_with_brute_force(seed, queries, segments):
    g = torch.Generator().manual_seed(seed)
    num_classes = 4
    class_logits = torch.randn(queries, num_classes + 1, generator=g) * 2
    mask_logits = torch.randn(queries, 8, 12, generator=g) * 3
    labels = torch.randint(0, num_classes, (segments,), generator=g)
    target_masks = torch.rand(segments, 32, 48, generator=g) > 0.5
    weights = CostWeights()
    cost = matching_cost(class_logits, mask_logits, labels, target_masks, weights, 300, derived_generator(seed))
    coords = uniform_points(1, 300, derived_generator(seed))
    brute = torch.tensor(
        [
            [
                float(_pair_cost(class_logits[i], mask_logits[i], labels[j], target_masks[j], weights, coords))
                for j in range(segments)
            ]
            for i in range(queries)
        ]
    )
    torch.testing.assert_close(cost, brute, rtol=1e-5, atol=1e-5)
    best = min(
        sum(float(brute[q, j]) for j, q in enumerate(assignment))
        for assignment in itertools.permutations(range(queries), segments)
    )
    rows, cols = hungarian_match(cost)
    assert sorted(cols.tolist()) == list(range(segments))
    assert len(set(rows.tolist())) == segments
    assert float(brute[rows, cols].sum()) == pytest.approx(best, abs=1e-4)


def test_non_finite_cost_is_a_clear_error():
    from anomask.errors import AnomaskError

    with pytest.raises(AnomaskError, match="not finite"):
        hungarian_match(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))
