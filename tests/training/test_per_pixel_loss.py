import torch
import torch.nn.functional as F

from anomask.training.per_pixel_loss import PerPixelCriterion, PerPixelLossConfig


def _ideal(target, strength=10.0):
    semantic = target.semantic.clone()
    semantic[semantic > 2] = 0
    one_hot = F.one_hot(semantic, 3).permute(2, 0, 1).float()
    sem = F.interpolate(one_hot[None], size=(16, 32), mode="area") * 2 * strength - strength
    od = F.interpolate(target.anomaly[None, None].float(), size=(16, 32), mode="area") * 2 * strength - strength
    return {"sem_logits": sem, "outlier_logits": od}


def test_perfect_two_head_predictions_beat_flipped_ones(scene):
    target = scene(anomaly=True)
    criterion = PerPixelCriterion(3, PerPixelLossConfig())
    ideal = _ideal(target)
    flipped = {"sem_logits": ideal["sem_logits"].roll(1, dims=1), "outlier_logits": -ideal["outlier_logits"]}
    good = criterion(ideal, [target], [0])
    bad = criterion(flipped, [target], [0])
    assert float(good["loss_cls"]) < 0.2 * float(bad["loss_cls"])
    assert float(good["loss_outlier"]) < 0.2 * float(bad["loss_outlier"])


def test_outlier_pixels_do_not_train_the_classifier(scene):
    target = scene(anomaly=True)
    criterion = PerPixelCriterion(3, PerPixelLossConfig())
    outputs = _ideal(target)
    changed = {k: v.clone() for k, v in outputs.items()}
    # Scramble class logits well inside the outlier region (bilinear upsampling reaches one
    # low-resolution pixel beyond; rows 52-63, columns 104-123 at full resolution).
    changed["sem_logits"][..., 14:16, 27:30] = torch.randn(1, 3, 2, 3) * 5
    assert torch.equal(criterion(outputs, [target], [0])["loss_cls"], criterion(changed, [target], [0])["loss_cls"])
