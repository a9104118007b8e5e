import json

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data import CityscapesDataset
from anomask.training.data.imageio import read_label, write_png
from anomask.training.data.synthetic import (
    GROUPS,
    SOURCES,
    SYNTH_CLASSES,
    SynthConfig,
    SyntheticAnomalyDataset,
    cutouts,
    ensure_generated,
    generate,
    seen_negatives,
)

SMALL = dict(train=2, val=1, test=4, anomaly_val=2, height=64, width=128)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "a"
    generate(root, SynthConfig(seed=0, **SMALL))
    return root


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(synth, tmp_path):
    generate(tmp_path / "b", SynthConfig(seed=0, **SMALL))
    first, second = _files(synth), _files(tmp_path / "b")
    assert len(first) == 2 + 3 * 3 + (4 + 2) * 4 + 2  # classes/synth.json, 3 + 4 + 2 frames, 2 objects.json
    assert first == second
    generate(tmp_path / "c", SynthConfig(seed=1, **{**SMALL, "val": 0, "test": 0, "anomaly_val": 0}))
    name = "leftImg8bit/train/synthcity/synthcity_000000_000019_leftImg8bit.png"
    assert (tmp_path / "c" / name).read_bytes() != (synth / name).read_bytes()


def test_seen_and_unseen_groups_never_mix(synth):
    groups = {g: {s.name for s in SOURCES if s.group == g} for g in GROUPS}
    photos = {g: {s.photo for s in SOURCES if s.group == g} for g in GROUPS}
    assert groups["seen"] and groups["unseen"] and not groups["seen"] & groups["unseen"]
    assert not photos["seen"] & photos["unseen"]
    assert {n.name for n in seen_negatives().negatives} == groups["seen"]
    assert {c.source.name for c in cutouts("unseen")} == groups["unseen"]
    records = json.loads((synth / "anomaly" / "objects.json").read_text())["images"]
    assert [r["group"] for r in records] == ["seen", "unseen", "seen", "unseen"]
    for record in records:
        assert record["objects"] and {o["name"] for o in record["objects"]} <= groups[record["group"]]
    for split in ("train", "val"):
        for sample in CityscapesDataset(synth, split):
            assert not (sample["semantic"] == 254).any()


def test_anomaly_validation_split_holds_only_seen_objects_and_leaves_the_other_frames_unchanged(synth, tmp_path):
    """Its own RNG stream: the test (and train/val) frames are byte-identical with or without
    it, and none of its images is a test image."""
    seen = {s.name for s in SOURCES if s.group == "seen"}
    validation = SyntheticAnomalyDataset(synth, "anomaly_val")
    assert len(validation) == 2 and validation.folder == synth / "anomaly_val"
    for index in range(len(validation)):
        assert validation.group(index) == "seen"
        assert validation.objects(index) and {o["name"] for o in validation.objects(index)} <= seen
        assert (validation[index]["anomaly"] == 1).any()
    generate(tmp_path / "none", SynthConfig(seed=0, **{**SMALL, "anomaly_val": 0}))
    without = _files(tmp_path / "none")
    assert not (tmp_path / "none" / "anomaly_val").exists()
    with_split = _files(synth)
    assert {p: b for p, b in with_split.items() if p.parts[0] != "anomaly_val" and p.name != "synth.json"} == {
        p: b for p, b in without.items() if p.name != "synth.json"
    }
    test_images = {b for p, b in with_split.items() if p.parts[:2] == ("anomaly", "images")}
    assert not test_images & {b for p, b in with_split.items() if p.parts[:2] == ("anomaly_val", "images")}


def test_ensure_generated_adds_the_validation_split_to_an_older_dataset(tmp_path):
    root = tmp_path / "old"
    generate(root, SynthConfig(seed=0, train=1, val=0, test=1, anomaly_val=0, height=48, width=96))
    settings = json.loads((root / "synth.json").read_text())
    del settings["anomaly_val"]
    (root / "synth.json").write_text(json.dumps({**settings, "format": 1}))  # as written before the split existed
    before = _files(root)
    ensure_generated(root)
    after = _files(root)
    assert {p: b for p, b in after.items() if p.parts[0] != "anomaly_val" and p.name != "synth.json"} == {
        p: b for p, b in before.items() if p.name != "synth.json"
    }
    assert len(SyntheticAnomalyDataset(root, "anomaly_val")) == SynthConfig().anomaly_val
    assert json.loads((root / "synth.json").read_text())["format"] == 2
    ensure_generated(root)  # up to date: nothing rewritten
    assert _files(root) == after


def test_train_split_reads_as_cityscapes_with_consistent_instances(synth):
    dataset = CityscapesDataset(synth, "train")
    assert dataset.classes == SYNTH_CLASSES.classes and len(dataset) == 2
    things = {i for i, c in enumerate(dataset.classes) if c.is_thing}
    for frame, sample in zip(dataset.frames, dataset):
        assert sample["image"].shape == (64, 128, 3)
        assert set(np.unique(sample["semantic"]).tolist()) <= set(range(10)) | {255}
        raw = read_label(frame.instances)
        for instance in np.unique(sample["instances"])[1:]:
            classes = np.unique(sample["semantic"][sample["instances"] == instance])
            assert len(classes) == 1 and int(classes[0]) in things
            raw_ids = np.unique(raw[sample["instances"] == instance])
            assert len(raw_ids) == 1 and raw_ids[0] // 1000 == SYNTH_CLASSES.label_ids[int(classes[0])]


def test_anomaly_split_has_fishyscapes_and_panoptic_ground_truth(synth):
    dataset = SyntheticAnomalyDataset(synth)
    assert len(dataset) == 4 and dataset.group(1) == "unseen"
    for index in range(len(dataset)):
        sample = dataset[index]
        semantic, anomaly, instances = sample["semantic"], sample["anomaly"], sample["instances"]
        assert set(np.unique(anomaly).tolist()) <= {0, 1, 255}
        assert np.array_equal(anomaly == 1, semantic == 254) and np.array_equal(anomaly == 255, semantic == 255)
        assert (instances[anomaly == 1] > 0).all()
        for record in dataset.objects(index):
            assert (instances == record["instance"]).sum() == record["pixels"] > 0
            assert (semantic[instances == record["instance"]] == 254).all()


def test_non_empty_foreign_folder_is_refused_and_reruns_replace_frames(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(AnomaskError, match="folder is not empty"):
        generate(tmp_path, SynthConfig(**SMALL))
    root = tmp_path / "rerun"
    generate(root, SynthConfig(train=2, val=0, test=0, height=48, width=96))
    generate(root, SynthConfig(train=1, val=0, test=0, height=48, width=96))
    assert len(list((root / "leftImg8bit").rglob("*.png"))) == 1


def test_anomaly_reader_rejects_bad_labels(synth, tmp_path):
    root = tmp_path / "copy"
    for path, data in _files(synth).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    write_png(root / "anomaly" / "labels_masks" / "anomaly_000002.png", np.full((64, 128), 7, dtype=np.uint8))
    with pytest.raises(AnomaskError, match=r"anomaly_000002.png: label values \[7\]"):
        SyntheticAnomalyDataset(root)[2]
    with pytest.raises(AnomaskError, match="anomaly split folder not found"):
        SyntheticAnomalyDataset(tmp_path / "none")
