import torch

from anomask.training.criterion import MaskCriterion, MaskLossConfig

CONFIG = MaskLossConfig(num_points=512)


def _total(losses):
    return float(sum(losses.values()))


def test_perfect_predictions_beat_shuffled_and_random(scene, ideal_outputs):
    targets = [scene(), scene()]
    criterion = MaskCriterion(num_classes=3, num_outputs=4, config=CONFIG)
    perfect = ideal_outputs(targets, num_queries=8, num_outputs=4)
    # Shuffled: every mask keeps its shape but claims the next segment's class.
    shuffled = {k: v.clone() for k, v in perfect.items()}
    count = len(targets[0].labels)
    shuffled["pred_logits"][:, :count] = perfect["pred_logits"][:, torch.arange(count).roll(1)]
    random = {
        "pred_logits": torch.randn_like(perfect["pred_logits"]),
        "pred_masks": torch.randn_like(perfect["pred_masks"]),
    }
    seeds = [11, 12]
    l_perfect = _total(criterion(perfect, targets, seeds))
    l_shuffled = _total(criterion(shuffled, targets, seeds))
    l_random = _total(criterion(random, targets, seeds))
    assert l_perfect < 0.25 * l_shuffled
    assert l_perfect < 0.25 * l_random


def test_deep_supervision_adds_one_set_per_aux_layer(scene, ideal_outputs):
    targets = [scene()]
    outputs = ideal_outputs(targets, num_queries=8, num_outputs=4)
    outputs["aux_outputs"] = [ideal_outputs(targets, 8, 4), ideal_outputs(targets, 8, 4)]
    losses = MaskCriterion(3, 4, CONFIG)(outputs, targets, [0])
    assert set(losses) == {f"loss_{n}{s}" for n in ("ce", "mask", "dice") for s in ("", "_aux0", "_aux1")}
    off = MaskCriterion(3, 4, MaskLossConfig(num_points=512, deep_supervision=False))(outputs, targets, [0])
    assert set(off) == {"loss_ce", "loss_mask", "loss_dice"}


def test_loss_is_a_function_of_the_seeds(scene):
    targets = [scene()]
    g = torch.Generator().manual_seed(0)
    outputs = {"pred_logits": torch.randn(1, 8, 4, generator=g), "pred_masks": torch.randn(1, 8, 16, 32, generator=g)}
    criterion = MaskCriterion(3, 4, CONFIG)
    a = criterion(outputs, targets, [5])
    b = criterion(outputs, targets, [5])
    c = criterion(outputs, targets, [6])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["loss_mask"], c["loss_mask"])


def test_uno_negative_class_is_matched_like_any_class(scene, ideal_outputs):
    """K+2 outputs: the pasted negative segment (label K=3) is a matched class."""
    targets = [scene(negative=True)]
    assert 3 in targets[0].labels.tolist()
    criterion = MaskCriterion(num_classes=3, num_outputs=5, config=CONFIG)
    right = ideal_outputs(targets, num_queries=8, num_outputs=5)
    wrong = {k: v.clone() for k, v in right.items()}
    neg = targets[0].labels.tolist().index(3)
    # Same mask, but its query says "car" instead of "negative": only the CE changes.
    wrong["pred_logits"][0, neg] = right["pred_logits"][0, targets[0].labels.tolist().index(1)]
    l_right = criterion(right, targets, [1])
    l_wrong = criterion(wrong, targets, [1])
    assert float(l_wrong["loss_ce"]) > 10 * float(l_right["loss_ce"])


def test_gradients_reach_every_output_even_without_segments(scene):
    empty = scene()
    empty.labels = empty.labels[:0]
    empty.masks = empty.masks[:0]
    logits = torch.randn(1, 8, 4, requires_grad=True)
    masks = torch.randn(1, 8, 16, 32, requires_grad=True)
    total = sum(MaskCriterion(3, 4, CONFIG)({"pred_logits": logits, "pred_masks": masks}, [empty], [0]).values())
    total.backward()
    assert logits.grad is not None and masks.grad is not None
