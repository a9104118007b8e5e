import torch
import torch.nn.functional as F
from torch import nn

from anomask.training.contrastive import ContrastiveOptions, mask_contrastive_loss, msp_anomaly
from anomask.training.targets import outlier_target


class TinyMaskModel(nn.Module):
    """Mask logits from pooled pixels (1x1 conv), one learnable class row per query."""

    def __init__(self, queries=6, outputs=4):
        super().__init__()
        self.masks = nn.Conv2d(3, queries, 1)
        self.classes = nn.Parameter(torch.zeros(queries, outputs))

    def forward(self, image):
        masks = self.masks(F.avg_pool2d(image, 4))
        return self.classes[None].expand(image.shape[0], -1, -1), masks


def _gap(class_logits, mask_logits, target):
    score = F.interpolate(msp_anomaly(class_logits, mask_logits, 3)[:, None], size=(64, 128), mode="bilinear")[0, 0]
    ood = outlier_target(target, 3)
    return float((score[ood == 1].mean() - score[ood == 0].mean()).detach())


def test_contrastive_steps_widen_the_gap(scene):
    torch.manual_seed(0)
    target = scene(anomaly=True)
    image = torch.randn(1, 3, 64, 128) * 0.2
    image[0, 0][target.anomaly == 1] += 2.0  # the outlier looks different
    model = TinyMaskModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    before = _gap(*model(image), target)
    losses = []
    for _ in range(30):
        loss = mask_contrastive_loss(*model(image), [target], num_classes=3, options=ContrastiveOptions(margin=0.75))
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = _gap(*model(image), target)
    assert after > before + 0.3
    assert losses[-1] < 0.5 * losses[0]


def test_loss_vanishes_at_the_stated_targets(scene):
    """Inliers with a best known-class score of 1 and outliers below 1 - m cost nothing."""
    target = scene(anomaly=True)
    outlier = F.interpolate(target.anomaly[None, None].float(), size=(16, 32), mode="area")[0, 0] > 0.5
    logits = torch.tensor([[[30.0, -30, -30, -30], [-30, -30, -30, 30.0]]])  # road / no-object
    masks = torch.stack([(~outlier).float(), outlier.float()])[None] * 60 - 30
    # Full-resolution ground truth; pixels where the bilinear upsampling blends the two
    # sides are ignored so that "ideal" is exact.
    blend = F.interpolate(outlier[None, None].float(), size=(64, 128), mode="bilinear")[0, 0]
    target.anomaly = blend.round().to(torch.uint8)
    target.anomaly[(blend > 0) & (blend < 1)] = 255
    assert float(mask_contrastive_loss(logits, masks, [target], num_classes=3)) < 1e-6
    # An outlier scored like an inlier is penalised by the full margin: 0.5 * 0.75^2.
    masks_all_road = torch.stack([torch.full_like(outlier, True).float(), outlier.float()])[None] * 60 - 30
    assert abs(float(mask_contrastive_loss(logits, masks_all_road, [target], 3)) - 0.5 * 0.75**2) < 1e-3


def official_loss_ood(class_logits, mask_logits, sem_seg, margin=1.0):
    """Mask2Anomaly's mask2former/modeling/criterion.py, SetCriterion.loss_ood ("margin"), with
    the ood_mask of MaskFormerSemanticDatasetMapper.__call__ (sem_seg == 254)."""
    ood_mask = sem_seg == 254
    logits = torch.einsum("bqc,bqhw->bchw", F.softmax(class_logits, dim=-1)[..., :-1], mask_logits.sigmoid())
    score = -torch.max(logits, dim=1)[0]
    score = F.interpolate(score.unsqueeze(1), size=ood_mask.shape[-2:], mode="bilinear", align_corners=True)
    score = score.squeeze(1)
    loss = torch.pow(score[~ood_mask], 2).mean()
    loss = loss + torch.pow(torch.clamp(margin - score[ood_mask], min=0.0), 2).mean()
    return 0.5 * loss


def test_official_options_reproduce_the_official_loss(scene):
    target = scene(anomaly=True)
    target.anomaly[:4] = 255  # void rows: inliers for the official code
    generator = torch.Generator().manual_seed(0)
    class_logits = 2 * torch.randn(2, 5, 4, generator=generator)  # K = 3, no-object last
    mask_logits = 3 * torch.randn(2, 5, 16, 32, generator=generator)
    sem_seg = torch.where(target.anomaly == 1, 254, target.anomaly.long())
    expected = official_loss_ood(class_logits, mask_logits, torch.stack([sem_seg, sem_seg]))
    got = mask_contrastive_loss(class_logits, mask_logits, [target, target], 3, ContrastiveOptions.official())
    torch.testing.assert_close(got, expected)
    # anomask's default differs in every option: form, margin, resize and void.
    for change in (
        {"form": "anomask"},
        {"margin": 0.75},
        {"align_corners": False},
        {"void_as_inlier": False},
    ):
        options = ContrastiveOptions(**{**vars(ContrastiveOptions.official()), **change})
        loss = mask_contrastive_loss(class_logits, mask_logits, [target, target], 3, options)
        assert abs(float(loss - expected)) > 1e-4


def test_loss_settings_build_the_options():
    from anomask.training.config import merge
    from anomask.training.criterion import MaskLossConfig

    assert MaskLossConfig().contrastive == ContrastiveOptions()  # anomask's defaults
    official = {
        "contrastive_form": "official",
        "contrastive_margin": 1.0,
        "contrastive_align_corners": True,
        "contrastive_void_as_inlier": True,
    }
    assert merge(MaskLossConfig(), official).contrastive == ContrastiveOptions.official()
