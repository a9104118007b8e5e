"""The exported graph: end-to-end parity with PyTorch, metadata inside, bad inputs."""

import numpy as np
import onnx
import pytest
from safetensors.torch import save_file

from anomask.cli import main
from anomask.errors import AnomaskError
from anomask.export.export_cli import check_parity
from anomask.export.export_info import PANOPTIC_OUTPUTS, REQUIRED_OUTPUTS
from anomask.export.onnx_export import example_frames, read_export_info_file
from anomask.export.op_support import tensorrt_problems
from anomask.export.parity import compare_outputs
from anomask.export.runtime import open_runtime
from anomask.export.runtime_torch import TorchRuntime
from anomask.models.heads import OUTPUT_NAMES, panoptic_images


def test_check_reports_every_output(exported):
    for name in ("semantic", "anomaly", "open_set", "mask_id", "mask_class"):
        assert any(line.startswith(name) and " ok " in line for line in exported.check_output.splitlines()), (
            exported.check_output
        )


def test_metadata_travels_in_the_onnx_file(exported):
    info = read_export_info_file(exported.onnx)
    assert info.metadata.classes == exported.metadata.classes
    assert info.metadata.score == "eam" and info.metadata.input_format == "BGR"
    assert info.settings == exported.settings
    # The graph contract (export_info, torch-free for the node) is the heads' own output list.
    assert info.outputs == (*REQUIRED_OUTPUTS, *PANOPTIC_OUTPUTS) == OUTPUT_NAMES
    assert REQUIRED_OUTPUTS == ("semantic", "anomaly", "open_set")
    assert "anomask export" in info.command
    model = onnx.load(str(exported.onnx))
    assert [i.name for i in model.graph.input] == ["frames", "threshold"]
    assert [o.name for o in model.graph.output] == list(info.outputs)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_exported_graph_passes_the_tensorrt_check(exported):
    assert tensorrt_problems(onnx.load(str(exported.onnx))) == []


def test_open_set_panoptic_end_to_end_matches_pytorch(exported):
    """ONNX Runtime + CPU post-processing == PyTorch eager + the same post-processing."""
    onnx_runtime = open_runtime(str(exported.onnx))
    torch_runtime = open_runtime(
        str(exported.checkpoint),
        input_size=(48, 80),
        network_size=(64, 96),
        output_size=(32, 48),
        score="eam",
        refine=True,
        input_format="BGR",
        max_batch=3,
    )
    assert isinstance(torch_runtime, TorchRuntime)
    assert onnx_runtime.metadata == torch_runtime.metadata
    assert onnx_runtime.output_names == torch_runtime.output_names
    frames = np.concatenate([example_frames(exported.settings, seed=7)])[:2]
    for threshold in (-0.9, -0.5):  # EAM scores are negative: both thresholds mark some pixels unknown
        ours, reference = onnx_runtime.run(frames, threshold), torch_runtime.run(frames, threshold)
        assert all(r.passed for r in compare_outputs(reference, ours))
        assert {k: v.dtype for k, v in ours.items()} == {k: v.dtype for k, v in reference.items()}
        for method in ("closed-set", "mining"):
            got = panoptic_images(ours, onnx_runtime.metadata, method)
            want = panoptic_images(reference, torch_runtime.metadata, method)
            assert got.dtype == np.int32 and got.shape == (2, 32, 48)
            assert np.mean(got == want) >= 0.999


def test_parity_check_fails_for_a_different_network(exported, standin_onnx):
    """The check must be able to fail: the stand-in graph is not this checkpoint's network."""
    path, _, _, settings = standin_onnx
    import torch

    from anomask.models.network import build_model

    torch.manual_seed(3)
    other = build_model(exported.metadata.architecture).eval()
    passed, report = check_parity(exported.onnx, other, exported.metadata, exported.settings, frames=2)
    assert not passed and "FAIL" in report


def test_checkpoint_without_metadata_is_refused(tmp_path, capsys):
    import torch

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    assert main(["export", str(bare), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not an anomask checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_from_another_program_is_refused(tmp_path):
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    # IR version 10 (opset 18): what the installed ONNX Runtime loads, whatever onnx's default.
    model = onnx.helper.make_model(graph, producer_name="someone-else", ir_version=10)
    model.opset_import[0].version = 18
    onnx.save(model, str(foreign))
    with pytest.raises(AnomaskError, match="no anomask metadata.*someone-else"):
        read_export_info_file(foreign)
    with pytest.raises(AnomaskError, match="no anomask metadata"):
        open_runtime(str(foreign))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a protobuf at all" * 10)
    with pytest.raises(AnomaskError, match="garbage.onnx"):
        open_runtime(str(garbage))


def test_onnx_source_needs_an_engine_flag(exported, capsys):
    assert main(["export", str(exported.onnx)]) == 2
    assert "pass --engine" in capsys.readouterr().err
