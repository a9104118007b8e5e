"""The deployed graph module: a float16 graph leaves the caller's network as it was."""

import numpy as np
import torch

from anomask.export.export_info import ExportSettings
from anomask.export.onnx_export import example_frames
from anomask.export.runtime_torch import TorchRuntime

from ..conftest import StandInNetwork, tiny_metadata


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
