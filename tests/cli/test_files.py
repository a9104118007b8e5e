"""anomask.files: the writable-folder check and the one atomic writer (umask permissions,
nothing half-written)."""

import os
import stat
from contextlib import contextmanager

import pytest

from anomask.errors import AnomaskError
from anomask.files import atomic_dir, atomic_file, require_writable_dir, write_bytes_atomic


@contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folder_under_a_file_is_refused_naming_it(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(AnomaskError, match=r"file\.txt is a file, not a folder") as error:
        require_writable_dir(tmp_path / "file.txt" / "sub", "--out")
    assert str(error.value).startswith(f"--out {tmp_path / 'file.txt' / 'sub'} cannot be created")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "file.txt" / "sub").exists()


def test_existing_file_as_folder_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(AnomaskError, match="is a file, not a folder"):
        require_writable_dir(tmp_path / "out")


def test_unwritable_folder_is_refused(tmp_path, monkeypatch):
    # Tests run as root, for whom chmod 0500 changes nothing: deny access the way the kernel would.
    monkeypatch.setattr(os, "access", lambda path, flags: os.fspath(path) != os.fspath(tmp_path))
    with pytest.raises(AnomaskError, match=f"output folder {tmp_path / 'new' / 'deeper'} is not writable"):
        require_writable_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()


def test_writable_folder_passes_and_creates_nothing(tmp_path):
    assert require_writable_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    require_writable_dir(tmp_path)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_permissions_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    with umask(mask):
        write_bytes_atomic(tmp_path / "new" / "a.bin", b"a")
        with atomic_file(tmp_path / "b.onnx") as temporary:
            temporary.write_bytes(b"b")
        with atomic_dir(tmp_path / "final") as folder:
            (folder / "model.safetensors").write_bytes(b"m")
    assert mode(tmp_path / "new" / "a.bin") == file_mode
    assert mode(tmp_path / "b.onnx") == file_mode
    assert mode(tmp_path / "new") == dir_mode
    assert mode(tmp_path / "final") == dir_mode
    assert mode(tmp_path / "final" / "model.safetensors") == file_mode


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_folder_writer_that_raises_leaves_the_old_folder(tmp_path):
    target = tmp_path / "final"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_dir(target) as folder:
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert (target / "model.safetensors").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_a_finished_folder_replaces_the_old_one(tmp_path):
    target = tmp_path / "best"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic_dir(target) as folder:
        (folder / "model.safetensors").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_every_writer_creates_what_the_umask_allows(tmp_path, mask, file_mode, dir_mode):
    """model.safetensors, final/ best/ iter_* folders, .onnx, engine + sidecar and PNGs: the
    issue found them 0600/0700 under umask 022."""
    import numpy as np
    import onnx
    import torch

    from anomask.export.engine_cache import BuildTarget, EngineKey, sidecar_path, write_engine
    from anomask.export.onnx_export import save_model_atomic
    from anomask.models import build_model, save_checkpoint
    from anomask.training.checkpoints import checkpoint_name, write_model_dir
    from anomask.training.data.imageio import write_png

    from ..conftest import tiny_metadata

    metadata = tiny_metadata(dec_layers=1)
    torch.manual_seed(0)
    network = build_model(metadata.architecture)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    key = EngineKey(BuildTarget("gpu", (8, 7), "10.3.0"), "fp16", "0" * 64)
    with umask(mask):
        files = [
            save_checkpoint(tmp_path / "model.safetensors", network, metadata),
            tmp_path / "model.onnx",
            tmp_path / "model.engine",
            sidecar_path(tmp_path / "model.engine"),
            tmp_path / "data" / "label.png",
        ]
        save_model_atomic(onnx.helper.make_model(graph), files[1])
        write_engine(files[2], b"engine", key, "{}", {})
        write_png(files[4], np.zeros((4, 4), np.uint8))
        folders = [tmp_path / "run" / name for name in ("final", "best", checkpoint_name(10))]
        for folder in folders:
            write_model_dir(folder, network, metadata, {"iteration": 10} if folder.name.startswith("iter") else None)
    for folder in folders:
        files.extend(folder.iterdir())
    assert {path.name: mode(path) for path in files} == {path.name: file_mode for path in files}
    folders += [tmp_path / "run", tmp_path / "data"]
    assert {str(path): mode(path) for path in folders} == {str(path): dir_mode for path in folders}
    assert not [path for path in tmp_path.rglob(".*")], "no temporary left behind"


def test_a_folder_named_like_a_file_is_not_reported_missing(tmp_path):
    from anomask.evaluation.predictors import open_predictor
    from anomask.export.onnx_export import load_onnx
    from anomask.files import require_file
    from anomask.models import load_checkpoint

    folder = tmp_path / "x.safetensors"
    folder.mkdir()
    for open_model, path in ((load_checkpoint, folder), (open_predictor, folder), (load_onnx, tmp_path)):
        with pytest.raises(AnomaskError, match=f"^{path}: is a directory, expected a (checkpoint|model|ONNX) file$"):
            open_model(path)
    with pytest.raises(AnomaskError, match=r"y\.onnx: ONNX file not found"):
        load_onnx(tmp_path / "y.onnx")
    (tmp_path / "y").write_text("a file")
    assert require_file(tmp_path / "y") == tmp_path / "y"
