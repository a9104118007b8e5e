import numpy as np
import pytest

from anomask.training.data import (
    AnomalyMix,
    ArrayNegatives,
    BoxNegatives,
    InstancePaste,
    Negative,
    NoisyNegativeImages,
    NoisyNegativePaste,
)
from anomask.training.data.imageio import write_png

MAGENTA = (255, 0, 255)


def _sample(height=64, width=128):
    image = np.full((height, width, 3), 90, dtype=np.uint8)  # never magenta
    semantic = np.zeros((height, width), dtype=np.uint8)
    semantic[: height // 3] = 1
    instances = np.zeros((height, width), dtype=np.int32)
    instances[40:50, 10:20] = 1
    return {"image": image, "semantic": semantic, "instances": instances, "name": "x"}


def _pool(height=30, width=60, disc=True):
    mask = np.ones((height, width), dtype=bool)
    if disc:
        ys, xs = np.mgrid[0:height, 0:width]
        mask = ((ys - height / 2 + 0.5) / (height / 2)) ** 2 + ((xs - width / 2 + 0.5) / (width / 2)) ** 2 <= 1
    image = np.full((height, width, 3), MAGENTA, dtype=np.uint8)  # resizing blends nothing else in
    return ArrayNegatives([Negative(image, mask, "disc")])


def _pasted(sample):
    return (sample["image"] == MAGENTA).all(axis=-1)


def _check_labels(before, after, label):
    pasted = _pasted(after)
    assert pasted.any()
    assert np.array_equal(after["anomaly"], pasted.astype(np.uint8))
    assert (after["semantic"][pasted] == label).all()
    assert np.array_equal(after["semantic"][~pasted], before["semantic"][~pasted])
    assert (after["instances"][pasted] > before["instances"].max()).all()
    assert np.array_equal(after["instances"][~pasted], before["instances"][~pasted])


def test_anomaly_mix_labels_pasted_pixels_void_with_outlier_mask():
    before = _sample()
    copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in before.items()}
    after = AnomalyMix(_pool(), probability=1.0, reference_width=128)(before, np.random.default_rng(1))
    _check_labels(before, after, 255)
    assert all(np.array_equal(copy[k], before[k]) for k in ("image", "semantic", "instances"))  # input untouched
    assert "anomaly" not in before


def test_anomaly_mix_probability_is_0_2_within_sampling_error():
    mix = AnomalyMix(_pool(2, 2, disc=False))
    rng = np.random.default_rng(123)
    draws = 4000
    hits = sum(mix(_sample(8, 16), rng)["anomaly"].any() for _ in range(draws))
    sigma = np.sqrt(0.2 * 0.8 / draws)
    assert abs(hits / draws - 0.2) < 4 * sigma
    untouched = mix(_sample(8, 16), np.random.default_rng(0))
    assert untouched["anomaly"].dtype == np.uint8 and untouched["anomaly"].shape == (8, 16)


def test_uno_labels_pasted_pixels_as_the_negative_class():
    before = _sample()
    after = InstancePaste.uno(_pool(), negative_class=2)(before, np.random.default_rng(4))
    _check_labels(before, after, 2)
    assert len(np.unique(after["instances"][_pasted(after)])) <= 3


def test_eam_labels_pasted_pixels_void():
    before = _sample()
    after = InstancePaste.eam(_pool())(before, np.random.default_rng(5))
    _check_labels(before, after, 255)


@pytest.mark.parametrize(
    ("paste", "low", "high"),
    [
        (InstancePaste.uno(_pool(10, 20, disc=False), 2, count=1), 24, 125),  # 96-500 px at 2048 -> x 1/4
        (InstancePaste.eam(_pool(10, 20, disc=False), count=1), 24, 96),  # 96-384 px
    ],
)
def test_pasted_max_side_stays_in_the_scaled_range_and_inside(paste, low, high):
    assert paste.max_side_range(512) == (low, high)
    rng = np.random.default_rng(6)
    sides = []
    for _ in range(200):
        pasted = paste(_sample(256, 512), rng)["anomaly"] == 1
        rows, cols = np.flatnonzero(pasted.any(1)), np.flatnonzero(pasted.any(0))
        sides.append(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    assert low <= min(sides) and max(sides) < high and max(sides) - min(sides) > (high - low) / 2


def test_object_larger_than_the_image_is_shrunk_to_fit():
    after = AnomalyMix(_pool(200, 400, disc=False), probability=1.0, reference_width=128)(
        _sample(), np.random.default_rng(0)
    )
    assert after["anomaly"].shape == (64, 128)
    assert after["anomaly"].sum() == 64 * 128  # 1:2 like the image, shrunk to exactly the image


def test_noisy_negative_share_of_the_image_area():
    paste = NoisyNegativePaste(_pool(8, 12, disc=False))
    rng = np.random.default_rng(7)
    shares = []
    for _ in range(200):
        before = _sample(128, 256)
        after = paste(before, rng)
        pasted = after["anomaly"] == 1
        assert (after["semantic"][pasted] == 255).all() and np.array_equal(pasted, _pasted(after))
        shares.append(pasted.mean())
    # uniform in 0.1 %-10 %; box rounding moves the smallest boxes by a pixel
    assert 0.0007 < min(shares) < 0.01 and 0.08 < max(shares) < 0.105


def test_same_generator_state_gives_the_same_paste():
    paste = InstancePaste.uno(_pool(), 2)
    first = paste(_sample(), np.random.default_rng(9))
    second = paste(_sample(), np.random.default_rng(9))
    assert all(np.array_equal(first[k], second[k]) for k in ("image", "semantic", "instances", "anomaly"))


def test_noisy_negative_images_are_void_with_outlier_box(tmp_path, rng):
    write_png(tmp_path / "img" / "a.png", rng.integers(0, 256, (40, 80, 3), dtype=np.uint8))
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "a.xml").write_text(
        "<annotation><object><bndbox><xmin>20</xmin><ymin>10</ymin><xmax>39</xmax><ymax>29</ymax></bndbox></object></annotation>"
    )
    dataset = NoisyNegativeImages(BoxNegatives(tmp_path / "img", tmp_path / "xml"), (20, 20), classes=())
    sample = dataset[0]
    assert sample["image"].shape == (20, 20, 3) and (sample["semantic"] == 255).all()
    # 40x80 -> 20x40, centre crop columns 10..29: the box (10..19, 5..14 after scaling) lands at columns 0..9
    assert (sample["anomaly"][5:15, 0:10] == 1).all() and (sample["anomaly"] == 1).sum() == 100
    assert set(np.unique(sample["anomaly"]).tolist()) == {1, 255}
