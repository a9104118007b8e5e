import numpy as np

from anomask.training.data import Augment, AugmentConfig, TransformedDataset, sample_rng
from anomask.training.data.augment import MASK2FORMER_SCALES

PALETTE = np.array([[i * 23 % 256, i * 71 % 256, 200 - i * 13] for i in range(10)], dtype=np.uint8)


def _blocky_sample(rng, height=48, width=96, block=8):
    classes = rng.integers(0, 10, size=(height // block, width // block))
    semantic = np.kron(classes, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    instances = np.kron(
        np.arange(classes.size).reshape(classes.shape) + 1, np.ones((block, block), dtype=np.int64)
    ).astype(np.int32)
    return {
        "image": PALETTE[semantic],
        "semantic": semantic,
        "instances": instances,
        "anomaly": (semantic == 3).astype(np.uint8),
        "name": "blocks",
    }


class _Blocks:
    classes = ()

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return _blocky_sample(np.random.default_rng(index))


def test_geometry_is_applied_consistently_to_image_and_every_label_map():
    augment = Augment(AugmentConfig(crop_size=(40, 80), color=False))
    for seed in range(12):
        out = augment(_blocky_sample(np.random.default_rng(seed)), np.random.default_rng(seed))
        semantic, instances, anomaly, image = out["semantic"], out["instances"], out["anomaly"], out["image"]
        assert image.shape == (40, 80, 3) and semantic.shape == instances.shape == anomaly.shape == (40, 80)
        padded = semantic == 255
        assert (instances[padded] == 0).all() and (anomaly[padded] == 255).all() and (image[padded] == 128).all()
        labelled = ~padded
        assert np.array_equal(anomaly[labelled], (semantic[labelled] == 3).astype(np.uint8))
        for instance in np.unique(instances[labelled]):
            assert len(np.unique(semantic[instances == instance])) == 1  # a block keeps one class
        # bilinear image vs nearest labels differ only along block borders
        matches = (image[labelled] == PALETTE[semantic[labelled]]).all(axis=-1)
        assert matches.mean() > 0.7


def test_scales_crop_and_flip_follow_the_generator():
    augment = Augment(AugmentConfig(crop_size=None, color=False))
    sample = _blocky_sample(np.random.default_rng(0))
    heights, flips = set(), 0
    for seed in range(60):
        out = augment(sample, np.random.default_rng(seed))
        heights.add(out["image"].shape[0])
        scale = out["image"].shape[0] / 48
        assert min(abs(scale - s) for s in MASK2FORMER_SCALES) < 0.02
        unflipped = Augment(AugmentConfig(crop_size=None, color=False, flip=False))(sample, np.random.default_rng(seed))
        flips += not np.array_equal(out["semantic"], unflipped["semantic"])
    assert len(heights) >= 8 and 15 < flips < 45


def test_colour_jitter_changes_only_the_image_and_is_reproducible():
    sample = _blocky_sample(np.random.default_rng(1))
    plain = Augment(AugmentConfig(crop_size=(32, 32), color=False))(sample, np.random.default_rng(5))
    jittered = Augment(AugmentConfig(crop_size=(32, 32)))(sample, np.random.default_rng(5))
    again = Augment(AugmentConfig(crop_size=(32, 32)))(sample, np.random.default_rng(5))
    assert np.array_equal(jittered["image"], again["image"]) and np.array_equal(jittered["semantic"], again["semantic"])
    changed = [
        not np.array_equal(
            Augment(AugmentConfig(crop_size=None, scales=(1.0,), flip=False))(sample, np.random.default_rng(s))[
                "image"
            ],
            sample["image"],
        )
        for s in range(10)
    ]
    assert sum(changed) >= 7 and plain["semantic"].shape == jittered["semantic"].shape


def test_transformed_dataset_is_reproducible_per_seed_epoch_index():
    augment = Augment(AugmentConfig(crop_size=(32, 64)))
    dataset = TransformedDataset(_Blocks(), [augment], seed=3)
    first = dataset[2]
    assert np.array_equal(first["image"], TransformedDataset(_Blocks(), [augment], seed=3)[2]["image"])
    dataset.set_epoch(1)
    assert not np.array_equal(first["image"], dataset[2]["image"])
    assert sample_rng(3, 0, 2).integers(1 << 30) == sample_rng(3, 0, 2).integers(1 << 30)
    assert sample_rng(3, 0, 2).integers(1 << 30) != sample_rng(3, 0, 1).integers(1 << 30)
