"""Recipes: named config files (``training/recipes/NAME.yaml``) with ordered stages.

A recipe file has ``name``, ``source`` (the papers/configs its settings come from),
``stages`` (each a :class:`StageConfig` mapping; ``use: RECIPE`` starts a stage from that
recipe's single stage) and ``presets`` (``small`` and others: overlays applied to every
stage under ``all`` and to one stage under its name). ``recipes/_presets.yaml`` holds the
overlays shared by every recipe. The default preset is the papers' Cityscapes-scale setup.

Resolution order of one stage: dataclass defaults < ``use`` < the stage's own settings <
shared preset < recipe preset (``all``, then the stage's own) < command-line ``--set``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from anomask.errors import AnomaskError
from anomask.training.config import StageConfig, deep_update, load_yaml, merge

SHARED_PRESETS = "_presets"
SMALL_PRESET_ITERATION_S = 0.6
"""Seconds per training iteration of the ``small`` preset (batch 2) on an idle core with one
torch thread: 0.58-0.62 s measured for its three base stages (Mask2Former, GMA, per-pixel;
docs/findings.md). The demo's time estimate and the quality benchmark's cost model use it."""


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    preset: str
    stages: tuple[StageConfig, ...]
    text: str
    """The resolved recipe as JSON (written into checkpoint metadata)."""


def _recipe_dir() -> Path:
    return Path(str(resources.files("anomask.training") / "recipes"))


def available_recipes() -> list[str]:
    return sorted(p.stem for p in _recipe_dir().glob("*.yaml") if not p.stem.startswith("_"))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else load_yaml(text)
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as error:
        raise AnomaskError(f"{path}: cannot read recipe ({error})") from error
    if not isinstance(data, dict):
        raise AnomaskError(f"{path}: a recipe file must hold a mapping")
    return data


def _recipe_file(name: str) -> Path:
    """A packaged recipe by name, or a ``.yaml``/``.json`` file by path."""
    if name.endswith((".yaml", ".yml", ".json")):
        path = Path(name)
        if not path.is_file():
            raise AnomaskError(f"{path}: recipe file not found")
        return path
    path = _recipe_dir() / f"{name}.yaml"
    if not path.is_file():
        raise AnomaskError(f"unknown recipe {name!r}; valid recipes: {', '.join(available_recipes())}")
    return path


def _raw_stages(name: str, preset: str, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recipe file and its stages as merged mappings (``use`` and presets applied)."""
    if name in seen:
        raise AnomaskError(f"recipe {name!r} uses itself ({' -> '.join(seen + (name,))})")
    path = _recipe_file(name)
    data = _read(path)
    unknown = sorted(set(data) - {"name", "source", "description", "stages", "presets"})
    if unknown:
        raise AnomaskError(f"{path}: unknown recipe keys {', '.join(unknown)}")
    if not data.get("stages"):
        raise AnomaskError(f"{path}: a recipe needs at least one stage")
    shared = _read(_recipe_dir() / f"{SHARED_PRESETS}.yaml")
    if preset != "default" and preset not in shared and preset not in data.get("presets", {}):
        valid = sorted({"default", *shared, *data.get("presets", {})})
        raise AnomaskError(f"unknown preset {preset!r}; valid presets: {', '.join(valid)}")
    own = (data.get("presets") or {}).get(preset, {})
    stages = []
    for entry in data["stages"]:
        entry = dict(entry)
        base: dict[str, Any] = {}
        if "use" in entry:
            used = _raw_stages(entry.pop("use"), preset, seen + (name,))[1]
            if len(used) != 1:
                raise AnomaskError(f"{path}: 'use' must name a single-stage recipe")
            base = used[0]
        merged = deep_update(base, entry)
        merged = deep_update(merged, shared.get(preset, {}))
        merged = deep_update(merged, own.get("all", {}))
        merged = deep_update(merged, own.get(merged.get("name", "train"), {}))
        stages.append(merged)
    return data, stages


def load_recipe(name: str, preset: str = "default", overrides: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Resolve a recipe. ``overrides``: ``{"*": {...}}`` for every stage, ``{STAGE: {...}}``
    for one (the nested form of ``--set [STAGE:]KEY=VALUE``)."""
    data, raw = _raw_stages(name, preset)
    overrides = overrides or {}
    names = [s.get("name", "train") for s in raw]
    for target in overrides:
        if target != "*" and target not in names:
            raise AnomaskError(
                f"--set names stage {target!r}; recipe {data.get('name', name)!r} has {', '.join(names)}"
            )
    stages = []
    for entry in raw:
        entry = deep_update(entry, overrides.get("*", {}))
        entry = deep_update(entry, overrides.get(entry.get("name", "train"), {}))
        stages.append(merge(StageConfig(), entry, where=f"recipe {data.get('name', name)}"))
    if len(set(names)) != len(names):
        raise AnomaskError(f"recipe {name!r}: stage names must be unique ({', '.join(names)})")
    resolved = {
        "name": data.get("name", name),
        "source": data.get("source", ""),
        "preset": preset,
        "stages": [s.to_dict() for s in stages],
    }
    return Recipe(
        name=resolved["name"],
        source=resolved["source"],
        preset=preset,
        stages=tuple(stages),
        text=json.dumps(resolved, sort_keys=True),
    )
