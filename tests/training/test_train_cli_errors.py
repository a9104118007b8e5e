"""Bad inputs to ``anomask train`` end with exit status 2 and a message that names the
problem, before any training starts."""

import pytest

from anomask.cli import main
from anomask.models import ClassInfo, ModelConfig, ModelMetadata, build_model, save_checkpoint


def _error(capsys, args):
    assert main(args) == 2
    return capsys.readouterr().err


def test_unknown_recipe_lists_the_valid_ones(capsys, tmp_path):
    error = _error(capsys, ["train", "--recipe", "unoo", "--out", str(tmp_path)])
    assert "unknown recipe 'unoo'; valid recipes: closed-set, eam, mask2anomaly, open-panoptic, per-pixel, uno" in error


def test_checkpoint_classes_must_match_the_dataset(capsys, tmp_path, tiny_synthetic, tiny_args):
    classes = (ClassInfo("road", False, (1, 1, 1)), ClassInfo("cow", True, (2, 2, 2)))
    config = ModelConfig.small(num_classes=2, num_queries=4, dec_layers=1, enc_layers=1)
    path = save_checkpoint(tmp_path / "other.safetensors", build_model(config), ModelMetadata(classes, config))
    error = _error(capsys, tiny_args(tiny_synthetic, tmp_path / "out", "--init", str(path), recipe="uno"))
    assert f"{path}: the checkpoint's 2 classes (road, cow) do not match dataset" in error
    assert "10 classes (road, sidewalk, building" in error


def test_recipe_that_pastes_needs_a_negative_pool(capsys, tmp_path, tiny_synthetic, tiny_args):
    args = tiny_args(tiny_synthetic, tmp_path / "out", "--set", "data.negatives=null", recipe="per-pixel")
    error = _error(capsys, args)
    assert (
        "stage 'per-pixel' (data.paste=noisy) pastes negatives but no negative pool is set: pass --negatives" in error
    )


def test_missing_init_checkpoint(capsys, tmp_path, tiny_synthetic, tiny_args):
    args = tiny_args(tiny_synthetic, tmp_path / "out", recipe="uno") + ["--init", str(tmp_path / "missing.safetensors")]
    assert "missing.safetensors: checkpoint file not found" in _error(capsys, args)


def test_fine_tune_recipe_file_without_a_model_to_start_from(capsys, tmp_path, tiny_synthetic, tiny_args):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("name: mine\nsource: a test\nstages:\n  - {name: tune, source: a test, init: previous}\n")
    error = _error(capsys, tiny_args(tiny_synthetic, tmp_path / "out", recipe=str(recipe)))
    assert (
        "stage 'tune' of recipe 'mine' fine-tunes a trained model: run the earlier stages first or pass --init" in error
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--resume"], "run.json not found; nothing to resume"),
        (["--set", "solver.lr"], "expected [STAGE:]KEY=VALUE"),
        (["--negatives", "imagenet"], "expected one of synthetic, ade:IMAGE_DIR:ANNOTATION_DIR"),
    ],
)
def test_other_bad_options(capsys, tmp_path, tiny_synthetic, tiny_args, args, message):
    base = tiny_args(tiny_synthetic, tmp_path / "out", recipe="per-pixel")
    assert message in _error(capsys, base + args)


def test_stage_that_changes_the_architecture_names_what_changed(capsys, tmp_path, tiny_synthetic, tiny_args):
    classes = tuple(
        ClassInfo(n, False, (0, 0, 0))
        for n in (
            "road",
            "sidewalk",
            "building",
            "pole",
            "traffic sign",
            "vegetation",
            "terrain",
            "sky",
            "person",
            "car",
        )
    )
    config = ModelConfig.small(
        num_classes=10,
        num_queries=6,
        dec_layers=1,
        enc_layers=1,
        hidden_dim=32,
        mask_dim=32,
        num_heads=2,
        dim_feedforward=64,
        enc_dim_feedforward=64,
    )
    path = save_checkpoint(tmp_path / "m2f.safetensors", build_model(config), ModelMetadata(classes, config))
    error = _error(capsys, tiny_args(tiny_synthetic, tmp_path / "out", "--init", str(path), recipe="mask2anomaly"))
    assert "cannot start stage 'contrastive': the stage changes the architecture (" in error
    assert "global_masked_attention: checkpoint False, stage True" in error


def test_resume_from_a_folder_that_is_not_this_runs_checkpoint(capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"recipe": "closed-set", "preset": "small", "overrides": {}, "init": null}')
    error = _error(capsys, ["train", "--resume", str(tmp_path / "elsewhere" / "iter_00000003"), "--out", str(out)])
    assert "not a checkpoint folder of this run's stages" in error


def test_init_folder_named_like_a_checkpoint(capsys, tmp_path, tiny_synthetic, tiny_args):
    """Issue 17: a directory named x.safetensors was reported as "file not found"."""
    (tmp_path / "x.safetensors").mkdir()
    args = tiny_args(tiny_synthetic, tmp_path / "out", recipe="uno") + ["--init", str(tmp_path / "x.safetensors")]
    assert f"{tmp_path / 'x.safetensors'}: is a directory, expected a checkpoint file" in _error(capsys, args)
