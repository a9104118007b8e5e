"""``ExportSettings.flip`` (``anomask export --flip``): the graph averages the anomaly score
with the left-right flipped frame's (Mask2Anomaly's official inference,
anomaly_utils/anomaly_inference.py), exports to ONNX, and every other output is the
unflipped frame's. A stand-in network keeps the export to seconds."""

from dataclasses import replace

import numpy as np

from anomask.export.export_cli import add_arguments, settings_from_args
from anomask.export.export_info import ExportSettings
from anomask.export.runtime_onnx import OnnxRuntime
from anomask.export.runtime_torch import TorchRuntime
from anomask.models.metadata import UNKNOWN_ID

from ..conftest import export_standin


def test_flip_averaged_graph_exports_and_averages_the_flip(tmp_path):
    settings = ExportSettings(
        input_size=(32, 48), network_size=(32, 48), output_size=(32, 48), score="msp", refine=True, flip=True
    )
    path, network, metadata, _ = export_standin(tmp_path, settings)
    onnx = OnnxRuntime(path, providers=["CPUExecutionProvider"])
    assert onnx.info.settings.flip
    flipped = TorchRuntime(network, metadata, settings, source="checkpoint")
    plain = TorchRuntime(network, metadata, replace(settings, flip=False), source="checkpoint")
    frames = np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    got = flipped.run(frames, -0.5)
    one, other = plain.run(frames, -0.5), plain.run(np.ascontiguousarray(frames[:, :, ::-1]), -0.5)
    np.testing.assert_allclose(got["anomaly"], (one["anomaly"] + other["anomaly"][:, :, ::-1]) / 2, atol=1e-6)
    assert not np.allclose(got["anomaly"], one["anomaly"])
    np.testing.assert_array_equal(got["open_set"], np.where(got["anomaly"] > -0.5, UNKNOWN_ID, one["semantic"]))
    for name in ("semantic", "mask_id", "mask_class"):
        np.testing.assert_array_equal(got[name], one[name])
    np.testing.assert_allclose(onnx.run(frames, -0.5)["anomaly"], got["anomaly"], atol=1e-5)


def test_flip_option_reaches_the_settings():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from_args(parser.parse_args(["model.safetensors", "--flip"]), "msp").flip
    assert not settings_from_args(parser.parse_args(["model.safetensors"]), "msp").flip
