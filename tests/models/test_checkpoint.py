import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from anomask.errors import AnomaskError
from anomask.models import build_model, load_checkpoint, load_metadata, save_checkpoint


def test_round_trip_gives_bitwise_equal_outputs(tmp_path, gma_model, make_metadata):
    model = gma_model
    metadata = make_metadata(model.config)
    path = save_checkpoint(tmp_path / "model.safetensors", model, metadata)
    loaded, loaded_metadata = load_checkpoint(path)
    assert loaded_metadata == metadata and not loaded.training
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(images), loaded(images)
    assert torch.equal(a["pred_logits"], b["pred_logits"]) and torch.equal(a["pred_masks"], b["pred_masks"])
    assert load_metadata(path) == metadata
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left


def test_metadata_lives_in_the_safetensors_header(tmp_path, gma_model, make_metadata):
    path = save_checkpoint(tmp_path / "m.safetensors", gma_model, make_metadata(gma_model.config))
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert json.loads(header["__metadata__"]["anomask_metadata"])["architecture"]["num_queries"] == 4


def test_failed_write_keeps_the_old_file(tmp_path, gma_model, make_metadata, monkeypatch):
    metadata = make_metadata(gma_model.config)
    path = save_checkpoint(tmp_path / "m.safetensors", gma_model, metadata)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("anomask.models.checkpoint.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, gma_model, metadata)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_clear_errors_for_bad_files(tmp_path, make_config, make_metadata):
    with pytest.raises(AnomaskError, match="missing.safetensors: checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(AnomaskError, match="junk.safetensors: not a readable safetensors file"):
        load_checkpoint(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, bare)
    with pytest.raises(AnomaskError, match="bare.safetensors: not an anomask checkpoint"):
        load_checkpoint(bare)


def test_shape_mismatch_names_the_key(tmp_path, gma_model, make_config, make_metadata):
    path = save_checkpoint(tmp_path / "m.safetensors", gma_model, make_metadata(gma_model.config))
    # same metadata, but weights of a model with more queries
    other = build_model(make_config(num_queries=6, global_masked_attention=True))
    tensors = {k: v.contiguous() for k, v in other.state_dict().items()}
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        header = f.metadata()
    save_file(tensors, path, metadata=header)
    with pytest.raises(
        AnomaskError, match=r"predictor\.query_feat\.weight is \(6, 32\) in .* but \(4, 32\) in the model"
    ):
        load_checkpoint(path)


def test_save_rejects_metadata_of_another_architecture(tmp_path, gma_model, make_config, make_metadata):
    with pytest.raises(AnomaskError, match="does not match the model's config"):
        save_checkpoint(tmp_path / "m.safetensors", gma_model, make_metadata(make_config(num_queries=8)))


def test_metadata_errors_name_the_file(tmp_path, make_config, make_metadata):
    """Issue 17: a per-pixel checkpoint's metadata error named no file."""
    from dataclasses import replace

    from anomask.models.checkpoint import FORMAT, FORMAT_KEY, METADATA_KEY

    metadata = make_metadata(make_config())
    per_pixel = replace(
        metadata, architecture=replace(metadata.architecture, meta_arch="per_pixel", negative_class=True)
    )
    wrong_count = json.loads(metadata.to_json())
    wrong_count["classes"] = wrong_count["classes"][:1]
    missing_color = json.loads(metadata.to_json())
    del missing_color["classes"][0]["color"]
    for name, text, message in (
        ("per_pixel.safetensors", per_pixel.to_json(), "per_pixel models have a separate outlier head"),
        ("count.safetensors", json.dumps(wrong_count), "metadata lists 1 classes"),
        ("color.safetensors", json.dumps(missing_color), r"malformed metadata \(KeyError: 'color'\)"),
    ):
        save_file({"w": torch.zeros(2)}, tmp_path / name, metadata={FORMAT_KEY: FORMAT, METADATA_KEY: text})
        with pytest.raises(AnomaskError, match=f"^{tmp_path / name}: {message}"):
            load_checkpoint(tmp_path / name)
