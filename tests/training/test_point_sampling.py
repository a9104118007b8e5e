import torch

from anomask.training.point_sampling import PointConfig, point_sample, uncertain_points, uniform_points
from anomask.training.seeding import derived_generator


def test_same_seed_same_points_other_seed_other_points():
    logits = torch.randn(3, 1, 16, 32, generator=torch.Generator().manual_seed(0))
    config = PointConfig(num_points=200, oversample=3.0, importance=0.75)
    first = uncertain_points(logits, config, derived_generator(7, 0, 1))
    again = uncertain_points(logits, config, derived_generator(7, 0, 1))
    other_seed = uncertain_points(logits, config, derived_generator(8, 0, 1))
    other_stream = uncertain_points(logits, config, derived_generator(7, 0, 0))
    assert torch.equal(first, again)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(first, other_stream)
    assert first.shape == (3, 200, 2)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0


def test_sampling_leaves_the_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    uncertain_points(
        torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)), PointConfig(50), derived_generator(1)
    )
    assert torch.equal(torch.rand(4), expected)


def test_point_sample_reads_left_and_right_halves_across_resolutions():
    coarse = torch.zeros(1, 1, 4, 8)
    coarse[..., :4] = 1.0
    fine = torch.zeros(1, 1, 16, 32)
    fine[..., :16] = 1.0
    coords = torch.tensor([[[0.1, 0.5], [0.9, 0.5], [0.3, 0.4]]])
    assert point_sample(coarse, coords).flatten().tolist() == [1.0, 0.0, 1.0]
    assert point_sample(fine, coords).flatten().tolist() == [1.0, 0.0, 1.0]


def test_importance_points_concentrate_on_the_undecided_band():
    # Logit = signed distance from the vertical line x = 0.5: undecided only near it.
    xs = torch.linspace(-1, 1, 64)
    logits = (xs * 20).expand(32, 64)[None, None].clone()
    coords = uncertain_points(
        logits, PointConfig(num_points=400, oversample=3.0, importance=0.75), derived_generator(0)
    )
    near = ((coords[0, :, 0] - 0.5).abs() < 0.1).float().mean()
    uniform = ((uniform_points(1, 4000, derived_generator(1))[0, :, 0] - 0.5).abs() < 0.1).float().mean()
    assert near > 3 * uniform
