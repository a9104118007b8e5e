"""FusedHeads: output contract, agreement with the plain functions, bad inputs, ONNX parity."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomask.errors import AnomaskError
from anomask.models.heads import OUTPUT_NAMES, FusedHeads, PerPixelHeads, anomaly_score, op_msm

DTYPES = {
    "semantic": torch.uint8,
    "anomaly": torch.float32,
    "open_set": torch.uint8,
    "mask_id": torch.uint8,
    "mask_fg": torch.bool,
    "preferred_mask": torch.uint8,
    "background": torch.bool,
    "mask_class": torch.int32,
    "mask_score": torch.float32,
    "mask_keep": torch.bool,
    "mask_area": torch.int32,
    "stuff_entropy": torch.float32,
    "thing_entropy": torch.float32,
}


def random_outputs(metadata, batch=2, masks=6, size=(8, 12), seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, masks, metadata.architecture.num_outputs, generator=generator) * 3
    mask_logits = torch.randn(batch, masks, *size, generator=generator) * 4
    return logits, mask_logits


def test_outputs_have_the_documented_names_dtypes_and_shapes(metadata_factory):
    metadata = metadata_factory(4)
    outputs = FusedHeads(metadata, output_size=(32, 48))(*random_outputs(metadata), torch.tensor(-0.5))
    assert tuple(outputs) == OUTPUT_NAMES
    for name, value in outputs.items():
        assert value.dtype == DTYPES[name], name
        assert tuple(value.shape) == ((2, 32, 48) if value.dim() == 3 else (2, 6)), name


@pytest.mark.parametrize("score", ["eam", "uno", "rba", "ahm"])
def test_masks_mode_is_the_plain_functions_on_upsampled_masks(metadata_factory, score):
    metadata = metadata_factory(4, negative=True)
    logits, masks = random_outputs(metadata)
    threshold = torch.tensor(-0.4)
    outputs = FusedHeads(metadata, score=score, output_size=(16, 24), upsample="masks")(logits, masks, threshold)
    upsampled = F.interpolate(masks, size=(16, 24), mode="bilinear", align_corners=False)
    expected = anomaly_score(score, logits, upsampled, metadata)
    torch.testing.assert_close(outputs["anomaly"], expected)
    assert torch.equal(outputs["open_set"] == 254, expected > threshold)
    assert torch.equal(outputs["preferred_mask"].long(), upsampled.argmax(1))
    assert torch.equal(outputs["mask_area"].long(), (upsampled >= 0).sum((2, 3)))


@pytest.mark.parametrize("score", ["eam", "msp"])
def test_scores_mode_upsamples_the_mask_resolution_heads(metadata_factory, score):
    metadata = metadata_factory(4)
    logits, masks = random_outputs(metadata)
    outputs = FusedHeads(metadata, score=score, output_size=(32, 48))(logits, masks, torch.tensor(-0.4))
    low = FusedHeads(metadata, score=score)(logits, masks, torch.tensor(-0.4))
    expected = F.interpolate(
        anomaly_score(score, logits, masks, metadata)[:, None], size=(32, 48), mode="bilinear", align_corners=False
    )[:, 0]
    torch.testing.assert_close(outputs["anomaly"], expected)
    for name in ("mask_id", "preferred_mask"):  # nearest: every 4x4 block repeats the low-res value
        assert torch.equal(outputs[name][:, ::4, ::4], low[name]), name
    assert torch.equal(outputs["mask_area"], low["mask_area"] * 16)
    for name in ("mask_class", "mask_score", "mask_keep", "stuff_entropy", "thing_entropy"):
        assert torch.equal(outputs[name], low[name]), name


def test_scores_mode_agrees_with_masks_mode_on_smooth_masks(metadata_factory):
    """On masks that are smooth at mask resolution the two modes differ only near boundaries."""
    metadata = metadata_factory(4)
    logits, masks = random_outputs(metadata, size=(16, 24))
    masks = F.avg_pool2d(masks, 5, stride=1, padding=2, count_include_pad=False) * 3
    fast = FusedHeads(metadata, output_size=(64, 96))(logits, masks, torch.tensor(-0.4))
    exact = FusedHeads(metadata, output_size=(64, 96), upsample="masks")(logits, masks, torch.tensor(-0.4))
    assert (fast["semantic"] == exact["semantic"]).float().mean() > 0.97
    spread = exact["anomaly"].max() - exact["anomaly"].min()
    assert (fast["anomaly"] - exact["anomaly"]).abs().mean() < 0.03 * spread


def test_threshold_is_a_runtime_input(metadata_factory):
    metadata = metadata_factory(3)
    heads = FusedHeads(metadata, score="msp")
    inputs = random_outputs(metadata)
    unknown = [int((heads(*inputs, torch.tensor(t))["open_set"] == 254).sum()) for t in (-0.9, -0.5, -0.1)]
    assert unknown[0] > unknown[1] > unknown[2]


def test_refinement_keeps_claimed_pixels_out_of_the_unknown_class(metadata_factory):
    metadata = metadata_factory(3)  # refinement class: sky
    logits = torch.tensor([[[-5.0, 8.0, -5.0, -5.0], [-5.0, -5.0, -5.0, 8.0]]])  # confident sky, no-object
    masks = torch.full((1, 2, 4, 4), -8.0)
    masks[0, 0, :, :2] = 0.3  # sky claims the left half, weakly: am = -sigmoid(0.3) = -0.57
    masks[0, 1, :, :] = -2.0  # a weak no-object mask everywhere: am = -0.12 on the right
    plain = FusedHeads(metadata, score="am")(logits, masks, torch.tensor(-0.7))
    refined = FusedHeads(metadata, score="am", refine=True)(logits, masks, torch.tensor(-0.7))
    assert (plain["open_set"][0] == 254).all()
    assert (refined["open_set"][0, :, 2:] == 254).all()
    assert (refined["open_set"][0, :, :2] == 1).all()
    assert (refined["anomaly"][0, :, :2] == -1.0).all()  # am's floor


def test_batch_equals_single_calls(metadata_factory):
    metadata = metadata_factory(4, negative=True)
    heads = FusedHeads(metadata, score="uno", refine=True, output_size=(20, 30))
    logits, masks = random_outputs(metadata, batch=3)
    threshold = torch.tensor(-0.3)
    batched = heads(logits, masks, threshold)
    for b in range(3):
        single = heads(logits[b : b + 1], masks[b : b + 1], threshold)
        for name in OUTPUT_NAMES:
            torch.testing.assert_close(batched[name][b : b + 1], single[name], msg=name)


def test_calibrated_threshold_comes_from_the_metadata(metadata_factory):
    metadata = metadata_factory(3, thresholds={"eam+refined@tpr95": -0.25})
    assert FusedHeads(metadata, refine=True).calibrated_threshold().item() == -0.25
    with pytest.raises(AnomaskError, match="no threshold 'eam@tpr95' \\(has: eam\\+refined@tpr95\\)"):
        FusedHeads(metadata).calibrated_threshold()


@pytest.mark.parametrize(
    ("logits_shape", "masks_shape", "message"),
    [
        ((6, 4), (2, 6, 8, 8), "pred_logits must have shape \\[B, N, C\\]"),
        ((2, 6, 4), (6, 8, 8), "pred_masks must have shape \\[B, N, h, w\\]"),
        (
            (2, 6, 5),
            (2, 6, 8, 8),
            "pred_logits has 5 classes but the model metadata expects num_outputs=4 \\(3 known \\+ no-object\\)",
        ),
        ((2, 6, 4), (2, 5, 8, 8), "disagree on batch size or number of masks"),
        ((1, 300, 4), (1, 300, 2, 2), "at most 255"),
    ],
)
def test_bad_shapes_raise_clear_errors(metadata_factory, logits_shape, masks_shape, message):
    heads = FusedHeads(metadata_factory(3))
    with pytest.raises(AnomaskError, match=message):
        heads(torch.zeros(logits_shape), torch.zeros(masks_shape), torch.tensor(0.0))


def test_nan_and_bad_threshold_raise(metadata_factory):
    heads = FusedHeads(metadata_factory(3))
    logits, masks = torch.zeros(1, 2, 4), torch.zeros(1, 2, 3, 3)
    with pytest.raises(AnomaskError, match="pred_logits contains NaN"):
        heads(logits.index_fill(1, torch.tensor([0]), float("nan")), masks, torch.tensor(0.0))
    with pytest.raises(AnomaskError, match="pred_masks contains NaN"):
        heads(logits, masks.index_fill(2, torch.tensor([1]), float("nan")), torch.tensor(0.0))
    with pytest.raises(AnomaskError, match="threshold must be a 0-d float tensor"):
        heads(logits, masks, torch.tensor([0.0]))


def test_constructor_rejects_bad_settings(metadata_factory):
    with pytest.raises(AnomaskError, match="needs a negative-objectness class"):
        FusedHeads(metadata_factory(3), score="uno")
    with pytest.raises(AnomaskError, match="output_size must be"):
        FusedHeads(metadata_factory(3), output_size=(0, 10))


def test_per_pixel_heads_fuse_outlier_probability_and_max_softmax(metadata_factory):
    metadata = metadata_factory(3)
    # one pixel: softmax (0.5, 0.3, 0.2), outlier probability 0.8 -> 0.8 * (1 - 0.5) = 0.4
    sem = torch.tensor([0.5, 0.3, 0.2]).log().view(1, 3, 1, 1)
    outlier = torch.tensor(0.8 / 0.2).log().view(1, 1, 1, 1)
    assert op_msm(sem, outlier).item() == pytest.approx(0.4)
    heads = PerPixelHeads(metadata, output_size=(2, 2))
    outputs = heads(sem, outlier, torch.tensor(0.39))
    assert outputs["anomaly"].flatten().tolist() == pytest.approx([0.4] * 4)
    assert outputs["open_set"].flatten().tolist() == [254] * 4
    assert heads(sem, outlier, torch.tensor(0.41))["open_set"].flatten().tolist() == [0] * 4
    with pytest.raises(AnomaskError, match="sem_logits has 4 classes but the model metadata has K=3"):
        heads(torch.zeros(1, 4, 2, 2), torch.zeros(1, 1, 2, 2), torch.tensor(0.0))
    with pytest.raises(AnomaskError, match="outlier_logits \\[1, 2, 2, 2\\] must be"):
        heads(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2), torch.tensor(0.0))


def onnx_parity(module, inputs, path, thresholds):
    import onnxruntime

    names = (
        ["pred_logits", "pred_masks", "threshold"]
        if isinstance(module, FusedHeads)
        else ["sem_logits", "outlier_logits", "threshold"]
    )
    expected_names = list(module(*inputs, torch.tensor(thresholds[0])))
    torch.onnx.export(
        module,
        (*inputs, torch.tensor(thresholds[0])),
        str(path),
        dynamo=True,
        opset_version=18,
        input_names=names,
        output_names=expected_names,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == expected_names
    for threshold in thresholds:
        feed = dict(zip(names, [x.numpy() for x in inputs] + [np.array(threshold, np.float32)]))
        got = dict(zip(expected_names, session.run(None, feed)))
        want = module(*inputs, torch.tensor(threshold))
        for name in expected_names:
            if want[name].dtype.is_floating_point:
                np.testing.assert_allclose(got[name], want[name].numpy(), atol=1e-5, err_msg=name)
            else:
                assert got[name].dtype == want[name].numpy().dtype and np.array_equal(got[name], want[name].numpy()), (
                    name
                )


def test_fused_heads_export_to_onnx_and_match_onnxruntime(metadata_factory, tmp_path):
    """The deployed configuration: K+2 model, UNO, refinement, fast upsampling (one export,
    ~5 s; the "masks" mode uses the same operators)."""
    metadata = metadata_factory(4, negative=True)
    heads = FusedHeads(metadata, score="uno", refine=True, output_size=(24, 36)).eval()
    onnx_parity(heads, random_outputs(metadata, seed=3), tmp_path / "heads.onnx", [-0.3, 0.1, -1.2])


def test_per_pixel_heads_export_to_onnx(metadata_factory, tmp_path):
    generator = torch.Generator().manual_seed(4)
    inputs = (torch.randn(2, 3, 6, 8, generator=generator), torch.randn(2, 1, 6, 8, generator=generator))
    onnx_parity(
        PerPixelHeads(metadata_factory(3), output_size=(12, 16)).eval(), inputs, tmp_path / "pp.onnx", [0.2, 0.5]
    )
