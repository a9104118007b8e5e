"""The deployed graph module. ``OutputResize``: an exported graph with an output size other
than the network's gives the maps the node's CPU path gives from the network-size graph
(``resize_map``): labels and panoptic intermediates identical, the score within OpenCV's
fixed-point bilinear weights. A float16 graph leaves the caller's network as it was."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from anomask.export.export_info import ExportSettings
from anomask.export.frames import resize_map
from anomask.export.onnx_export import example_frames, read_export_info_file
from anomask.export.runtime import open_runtime
from anomask.export.runtime_torch import TorchRuntime

from ..conftest import StandInNetwork, export_standin, tiny_metadata


@pytest.fixture(scope="module")
def camera_sized(tmp_path_factory):
    """The stand-in exported for a camera larger than its network, by non-integer factors."""
    settings = ExportSettings(input_size=(72, 100), network_size=(32, 48), output_size=(72, 100), batch=2)
    return export_standin(tmp_path_factory.mktemp("camera_sized"), settings)


def assert_resized_like_the_node(graph, network, metadata, settings) -> None:
    runtime = open_runtime(str(graph), threads=1)
    at_network = TorchRuntime(network, metadata, replace(settings, output_size=settings.network_size))
    frames = np.concatenate([example_frames(settings, seed=s) for s in range(2)])[: settings.batch]
    got, plain = runtime.run(frames, 0.3), at_network.run(frames, 0.3)
    assert read_export_info_file(graph).settings.output_size == settings.output_size
    for index in range(settings.batch):
        for name in ("semantic", "open_set"):
            expected = resize_map(plain[name][index], settings.output_size, ids=True)
            np.testing.assert_array_equal(got[name][index], expected, err_msg=name)
        expected = resize_map(plain["anomaly"][index], settings.output_size, ids=False)
        np.testing.assert_allclose(got["anomaly"][index], expected, atol=3e-4 * max(1.0, np.abs(expected).max()))
    for name in ("mask_id", "mask_fg", "preferred_mask", "background"):  # panoptic intermediates: nearest
        expected = np.stack([resize_map(m.astype(np.uint8), settings.output_size, ids=True) for m in plain[name]])
        np.testing.assert_array_equal(got[name], expected.astype(plain[name].dtype), err_msg=name)
    ratio = np.prod(settings.output_size) / np.prod(settings.network_size)
    np.testing.assert_array_equal(got["mask_area"], np.round(plain["mask_area"] * ratio))


def test_a_camera_sized_graph_equals_the_node_resizing_the_network_sized_one(camera_sized) -> None:
    assert_resized_like_the_node(*camera_sized)


def test_a_smaller_output_size_is_resized_the_same_way(exported) -> None:
    assert_resized_like_the_node(exported.onnx, exported.network, exported.metadata, exported.settings)


def test_float16_graph_does_not_halve_the_callers_network():
    """``anomask bench runtime`` opens pytorch, then pytorch-fp16, then pytorch again on one
    network: the float16 graph must convert a copy."""
    torch.manual_seed(0)
    network, metadata = StandInNetwork().eval(), tiny_metadata()
    settings = ExportSettings(input_size=(32, 48), network_size=(32, 48), output_size=(16, 24), batch=1)
    frames = example_frames(settings, seed=3)
    before = TorchRuntime(network, metadata, settings).run(frames, 0.5)
    half = TorchRuntime(network, metadata, settings, half=True)
    assert {p.dtype for p in half.graph.network.parameters()} == {torch.float16}
    assert half.run(frames, 0.5)["semantic"].shape == (1, 16, 24)
    assert {p.dtype for p in network.parameters()} == {torch.float32}
    after = TorchRuntime(network, metadata, settings).run(frames, 0.5)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)
