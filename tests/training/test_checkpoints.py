import pytest
import torch

from anomask.errors import AnomaskError
from anomask.models import ClassInfo, ModelConfig, ModelMetadata, build_model, load_checkpoint
from anomask.training.checkpoints import (
    MODEL_FILE,
    STATE_FILE,
    checkpoint_name,
    latest_intact,
    list_checkpoints,
    prune,
    read_state,
    write_model_dir,
)
from anomask.training.seeding import capture_rng_state, restore_rng_state

CLASSES = (ClassInfo("road", False, (1, 2, 3)), ClassInfo("car", True, (4, 5, 6)))


@pytest.fixture(scope="module")
def model_and_metadata():
    config = ModelConfig.small(num_classes=2, num_queries=4, dec_layers=1, enc_layers=1)
    return build_model(config), ModelMetadata(classes=CLASSES, architecture=config)


def _write(root, iteration, model_and_metadata, **state):
    model, metadata = model_and_metadata
    return write_model_dir(root / checkpoint_name(iteration), model, metadata, {"iteration": iteration, **state})


def test_round_trip_with_weights_only_state(tmp_path, model_and_metadata):
    torch.manual_seed(5)
    rng = capture_rng_state()
    path = _write(tmp_path, 10, model_and_metadata, rng=rng, optimizer={"state": {0: {"step": torch.tensor(3.0)}}})
    state = read_state(path)
    assert state["iteration"] == 10 and float(state["optimizer"]["state"][0]["step"]) == 3.0
    expected = torch.rand(3)
    torch.manual_seed(99)
    restore_rng_state(state["rng"])
    assert torch.equal(torch.rand(3), expected)
    loaded, _ = load_checkpoint(path / MODEL_FILE)
    original = model_and_metadata[0].state_dict()
    assert all(torch.equal(v, original[k]) for k, v in loaded.state_dict().items())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.parametrize("damaged", [STATE_FILE, MODEL_FILE])
def test_truncated_checkpoint_is_refused_and_the_previous_one_named(tmp_path, model_and_metadata, damaged):
    first = _write(tmp_path, 10, model_and_metadata)
    second = _write(tmp_path, 20, model_and_metadata)
    target = second / damaged
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(
        AnomaskError, match=rf"{damaged}: corrupted or truncated.*previous checkpoint {first} is intact"
    ):
        latest_intact(tmp_path)
    assert read_state(first)["iteration"] == 10  # the previous one is kept and loads


def test_prune_keeps_the_newest(tmp_path, model_and_metadata):
    for iteration in (1, 2, 3, 4):
        _write(tmp_path, iteration, model_and_metadata)
    prune(tmp_path, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [checkpoint_name(3), checkpoint_name(4)]
    assert latest_intact(tmp_path)[1]["iteration"] == 4


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(AnomaskError, match="not a trainer checkpoint"):
        read_state(tmp_path)
