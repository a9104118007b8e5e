import re
from pathlib import Path

import pytest

from anomask.errors import AnomaskError
from anomask.training.config import parse_overrides as parse_settings
from anomask.training.recipes import available_recipes, load_recipe

EXPECTED = {"closed-set", "mask2anomaly", "eam", "uno", "open-panoptic", "per-pixel"}


def test_every_recipe_resolves_in_both_presets_and_cites_a_source():
    assert EXPECTED <= set(available_recipes())
    for name in EXPECTED:
        for preset in ("default", "small"):
            recipe = load_recipe(name, preset)
            assert recipe.source and all(stage.source for stage in recipe.stages)
            for stage in recipe.stages:
                assert stage.data.crop[0] % 32 == 0 and stage.data.crop[1] % 32 == 0


def test_default_preset_is_cityscapes_scale_and_small_is_cpu_scale():
    default = load_recipe("closed-set").stages[0]
    small = load_recipe("closed-set", "small").stages[0]
    assert (default.solver.iterations, default.solver.batch_size, default.data.crop) == (90000, 16, (512, 1024))
    assert default.model_preset == "default" and default.loss.num_points == 12544
    assert small.model_preset == "small" and small.solver.iterations < 5000


def test_fine_tune_recipes_start_from_the_previous_stage():
    uno = load_recipe("uno", "small")
    assert [s.name for s in uno.stages] == ["closed-set", "finetune"]
    assert uno.stages[1].init == "previous" and uno.stages[1].convert_negative
    assert uno.stages[1].data.paste == "uno" and uno.stages[1].data.negatives == "synthetic"
    m2a = load_recipe("mask2anomaly")
    assert m2a.stages[0].model["global_masked_attention"] and m2a.stages[1].loss.contrastive_weight == 1.0
    assert m2a.stages[1].loss.contrastive_margin == 0.75 and m2a.stages[1].solver.lr == 1e-5


def test_command_line_overrides_all_stages_or_one():
    overrides = parse_settings(["solver.lr=0.5", "finetune:solver.iterations=7", "model.dec_layers=2"])
    recipe = load_recipe("uno", "small", overrides)
    assert [s.solver.lr for s in recipe.stages] == [0.5, 0.5]
    assert [s.solver.iterations for s in recipe.stages] == [300, 7]
    assert all(s.model["dec_layers"] == 2 for s in recipe.stages)


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(AnomaskError, match="unknown recipe 'unoo'; valid recipes: closed-set, eam, mask2anomaly"):
        load_recipe("unoo")


@pytest.mark.parametrize(
    "settings,message",
    [
        (["solver.lrr=1"], r"solver.lrr: unknown setting; valid: amp, backbone_lr_multiplier"),
        (["solver.lr=fast"], r"solver.lr: expected a number, got 'fast'"),
        (["data.paste=glue"], r"data.paste: 'glue' is not one of"),
        (["nostage:seed=1"], r"--set names stage 'nostage'"),
    ],
)
def test_bad_overrides_are_clear_errors(settings, message):
    with pytest.raises(AnomaskError, match=message):
        load_recipe("uno", "small", parse_settings(settings))


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(AnomaskError, match="unknown preset 'tiny'; valid presets: default, small"):
        load_recipe("closed-set", "tiny")


def _documented_settings():
    """Every ``KEY=VALUE`` setting the docs show in backticks (``--set`` examples), and the
    ``--help`` example."""
    root = Path(__file__).parents[2]
    text = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    found = re.findall(r"`(?:--set )?((?:[a-z_-]+:)?[a-z_]+(?:\.[a-z_]+)+=[^`\s…]+)`", text)
    return sorted(set(found) | {"solver.lr=1e-5", "finetune:solver.lr=1e-5", "finetune:solver.iterations=50"})


@pytest.mark.parametrize("setting", _documented_settings())
def test_documented_settings_parse(setting):
    load_recipe("uno", "small", parse_settings([setting]))


@pytest.mark.parametrize(
    "text,value",
    [("1e-5", 1e-5), ("2e-3", 2e-3), ("2E-3", 2e-3), ("1.0e-4", 1e-4), ("-1.5e+2", -150.0), (".5e-1", 0.05)],
)
def test_numbers_parse_as_users_write_them(text, value):
    recipe = load_recipe("uno", "small", parse_settings([f"finetune:solver.lr={text}"]))
    assert recipe.stages[1].solver.lr == value and isinstance(recipe.stages[1].solver.lr, float)


def test_integers_with_underscores_or_exponents():
    recipe = load_recipe("uno", "small", parse_settings(["solver.iterations=1_000", "finetune:solver.iterations=2e3"]))
    assert [s.solver.iterations for s in recipe.stages] == [1000, 2000]
    assert parse_settings(["data.dataset=e5"]) == {"*": {"data": {"dataset": "e5"}}}  # not a number


def test_recipe_files_read_exponents_as_numbers(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nsource: a test\nstages:\n  - {name: a, source: a test, solver: {lr: 3e-4}}\n")
    assert load_recipe(str(path)).stages[0].solver.lr == 3e-4
