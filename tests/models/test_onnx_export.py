import pytest
import torch

from anomask.models import build_model

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_network_exports_with_the_dynamo_exporter_and_matches_onnxruntime(tmp_path, make_config):
    """The network alone (no heads): pure-PyTorch deformable attention (grid_sample) and
    global masked attention (foreground + background masks) export at opset 18; ONNX
    Runtime reproduces the outputs. One decoder layer keeps the export short."""
    torch.manual_seed(0)
    model = build_model(make_config(dec_layers=1, global_masked_attention=True)).eval()
    images = torch.randn(1, 3, 64, 96)
    program = torch.onnx.export(model, (images,), dynamo=True, opset_version=18, verbose=False)
    path = tmp_path / "net.onnx"
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, masks = session.run(None, {session.get_inputs()[0].name: images.numpy()})[:2]
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(torch.from_numpy(logits), expected["pred_logits"], rtol=0, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(masks), expected["pred_masks"], rtol=0, atol=1e-4)
