import copy

import pytest
import torch

from anomask.errors import AnomaskError
from anomask.models import add_negative_class, build_model, load_checkpoint, save_checkpoint


def test_k_plus_one_to_k_plus_two_keeps_known_and_no_object_logits(tmp_path, gma_model, make_metadata):
    model = copy.deepcopy(gma_model)
    config = model.config
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(images)["pred_logits"]
    model, metadata = add_negative_class(model, make_metadata(config))
    assert metadata.architecture.negative_class and metadata.architecture.num_outputs == 5
    with torch.no_grad():
        after = model(images)["pred_logits"]
    k = config.num_classes
    assert after.shape[-1] == k + 2
    # same weights; a wider GEMM may round differently in the last bit
    torch.testing.assert_close(after[..., :k], before[..., :k], rtol=0, atol=1e-6)
    torch.testing.assert_close(after[..., k + 1], before[..., k], rtol=0, atol=1e-6)
    assert torch.count_nonzero(after[..., k]) == 0
    head = model.predictor.class_embed
    assert torch.count_nonzero(head.weight[k]) == 0 and head.bias[k] == 0
    # the K+2 model round-trips through a checkpoint
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "uno.safetensors", model, metadata))
    with torch.no_grad():
        assert torch.equal(loaded(images)["pred_logits"], after)


def test_negative_class_twice_or_on_per_pixel_is_an_error(make_config, make_metadata):
    config = make_config(negative_class=True)
    with pytest.raises(AnomaskError, match="already has a negative class"):
        add_negative_class(build_model(config), make_metadata(config))
    config = make_config(meta_arch="per_pixel")
    with pytest.raises(AnomaskError, match="needs a mask2former model"):
        add_negative_class(build_model(config), make_metadata(config))


def test_convert_from_anomask_adds_the_negative_class(tmp_path, gma_model, make_metadata, capsys):
    from anomask.cli import main

    src = save_checkpoint(tmp_path / "k1.safetensors", gma_model, make_metadata(gma_model.config))
    out = tmp_path / "k2.safetensors"
    assert main(["convert", "--from", "anomask", str(src), "--negative-class", "--out", str(out)]) == 0
    assert "added a zero-initialised negative class" in capsys.readouterr().out
    model, metadata = load_checkpoint(out)
    assert metadata.architecture.negative_class and model.predictor.class_embed.out_features == 5
    assert metadata.command.startswith("anomask convert --from anomask")
