import pytest
from torch import nn

from anomask.training.config import SolverConfig
from anomask.training.optim import build_optimizer, build_scheduler, poly_factor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)
        self.query = nn.Embedding(5, 4)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_groups_backbone_multiplier_no_decay_for_norms_and_embeddings_frozen_left_out():
    solver = SolverConfig(lr=1e-3, weight_decay=0.05, backbone_lr_multiplier=0.1)
    net = Net()
    optimizer = build_optimizer(net, solver)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert by_param[id(net.backbone[0].weight)] == pytest.approx((1e-4, 0.05))
    assert by_param[id(net.backbone[1].weight)] == pytest.approx((1e-4, 0.0))
    assert by_param[id(net.head.weight)] == pytest.approx((1e-3, 0.05))
    assert by_param[id(net.query.weight)] == pytest.approx((1e-3, 0.0))
    assert id(net.frozen.weight) not in by_param


def test_poly_schedule_with_warmup():
    solver = SolverConfig(iterations=100, poly_power=0.9, warmup_iterations=10)
    assert poly_factor(0, solver) == pytest.approx(0.1)
    assert poly_factor(50, solver) == pytest.approx(0.5**0.9)
    assert poly_factor(100, solver) == 0.0
    net = Net()
    optimizer = build_optimizer(net, SolverConfig(iterations=4, lr=1.0, backbone_lr_multiplier=1.0))
    scheduler = build_scheduler(optimizer, SolverConfig(iterations=4, lr=1.0))
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1.0, 0.75**0.9, 0.5**0.9, 0.25**0.9])


@pytest.mark.parametrize("recipe", ["closed-set", "uno"])
def test_small_preset_trains_its_pretrained_backbone_at_a_tenth_of_the_rate(recipe):
    """Mask2Former (Cheng et al., 2022): backbone LR x 0.1 for ImageNet-initialised backbones;
    the small preset's EfficientNet-Lite0 starts from ImageNet weights."""
    from anomask.models import ModelConfig
    from anomask.training.recipes import load_recipe

    for stage in load_recipe(recipe, "small").stages:
        assert ModelConfig.preset(stage.model_preset, **stage.model).pretrained_backbone
        assert stage.solver.backbone_lr_multiplier == 0.1
