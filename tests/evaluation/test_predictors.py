"""Predictors: outputs at the image size whatever the network resolution, one network pass
for every score, an exported model's single fused score (through a ``Runtime``: here the
PyTorch one, which runs the same deployed graph as the ONNX file)."""

import cv2
import numpy as np
import pytest
import torch

from anomask.errors import AnomaskError
from anomask.evaluation.predictors import (
    CheckpointPredictor,
    ExportedPredictor,
    default_scores,
    open_predictor,
    parse_size,
)
from anomask.export.export_info import ExportSettings
from anomask.export.runtime_torch import TorchRuntime
from anomask.models import load_checkpoint
from anomask.models.heads import FusedHeads

RNG = np.random.default_rng(0)


def test_checkpoint_outputs_at_the_image_size_one_network_pass(tiny_checkpoint, one_thread):
    image = RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8)  # not a multiple of 32: padded
    predictor = CheckpointPredictor(tiny_checkpoint, ["eam", "msp"])
    calls = []
    predictor.network.register_forward_hook(lambda *args: calls.append(1))
    out = predictor.predict(image)
    assert len(calls) == 1
    assert set(out.scores) == {"eam", "msp"} and out.heads["semantic"].shape == (50, 70)
    assert all(s.shape == (50, 70) and s.dtype == np.float32 for s in out.scores.values())
    assert out.heads["mask_class"].shape == (6,)
    np.testing.assert_array_equal(out.heads["anomaly"], out.scores["eam"])
    # The padded network input, heads at the padded size, cropped: the training validation's way.
    network, metadata = load_checkpoint(tiny_checkpoint)
    x = (
        torch.from_numpy(image).permute(2, 0, 1)[None].float() - torch.tensor(metadata.mean).view(1, 3, 1, 1)
    ) / torch.tensor(metadata.std).view(1, 3, 1, 1)
    x = torch.nn.functional.pad(x, (0, 26, 0, 14))
    with torch.inference_mode():
        raw = network(x)
        msp = FusedHeads(metadata, score="msp", output_size=(64, 96))(
            raw["pred_logits"], raw["pred_masks"], torch.tensor(0.0)
        )
    np.testing.assert_array_equal(out.scores["msp"], msp["anomaly"][0, :50, :70].numpy())
    resized = CheckpointPredictor(tiny_checkpoint, ["eam"], size=(32, 64)).predict(image)
    assert resized.scores["eam"].shape == (50, 70)
    assert not np.array_equal(resized.scores["eam"], out.scores["eam"])


def test_exported_model_has_one_fused_score_and_outputs_at_the_image_size(tiny_checkpoint, one_thread):
    network, metadata = load_checkpoint(tiny_checkpoint)
    settings = ExportSettings(
        input_size=(32, 64), network_size=(32, 64), output_size=(16, 32), score="msp", input_format="BGR"
    )
    runtime = TorchRuntime(network, metadata, settings, source="model.onnx")
    predictor = ExportedPredictor(runtime)
    assert predictor.scores == ("msp",) and "only its fused score 'msp'" in predictor.notes[0]
    image = RNG.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    out = predictor.predict(image)
    direct = runtime.run(np.ascontiguousarray(cv2.resize(image, (64, 32))[..., ::-1])[None], 0.0)
    np.testing.assert_array_equal(
        out.scores["msp"], cv2.resize(direct["anomaly"][0], (128, 64), interpolation=cv2.INTER_LINEAR)
    )
    np.testing.assert_array_equal(out.heads["mask_id"], np.repeat(np.repeat(direct["mask_id"][0], 4, 0), 4, 1))
    np.testing.assert_array_equal(out.heads["mask_area"], direct["mask_area"][0] * 16)
    assert out.heads["mask_fg"].dtype == bool and out.heads["mask_fg"].shape == (64, 128)
    with pytest.raises(AnomaskError, match="carries one fused score, 'msp'"):
        ExportedPredictor(runtime, ["eam"])


def test_scores_sizes_and_files(tmp_path, tiny_checkpoint):
    predictor = CheckpointPredictor(tiny_checkpoint)
    assert predictor.scores == default_scores(predictor.metadata)
    assert predictor.scores[0] == "eam" and "uno" not in predictor.scores and "aem" not in predictor.scores
    assert CheckpointPredictor(tiny_checkpoint, ["eam+refined", "eam+refined", "am"]).scores == ("eam+refined", "am")
    assert parse_size("native") is None and parse_size("512x1024") == (512, 1024)
    for bad in ("512", "500x1024", "x", "0x0"):
        with pytest.raises(AnomaskError, match="input size"):
            parse_size(bad)
    (tmp_path / "model.pt").touch()
    with pytest.raises(AnomaskError, match="not a model file"):
        open_predictor(tmp_path / "model.pt")
    (tmp_path / "model.onnx").touch()
    with pytest.raises(AnomaskError, match="fixes its input size"):
        open_predictor(tmp_path / "model.onnx", size=(64, 64))
