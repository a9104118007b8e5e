"""Class names, thing flags and colours for imported weights, which rarely carry all three.

``--classes`` takes ``cityscapes``, ``streethazards``, a class-list JSON file (the format of
``anomask.models.classes``) or comma-separated names; without it the source's own
names (Hugging Face ``id2label``) are used, or the Cityscapes list when the weights have 19
classes or fix no count (backbone-only weights). Names that are Cityscapes classes get that
dataset's colour and thing flag; others a distinct generated colour and "stuff".
``--thing-classes`` sets the thing flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from anomask.errors import AnomaskError
from anomask.models.classes import CITYSCAPES, STREETHAZARDS, load_class_list
from anomask.models.metadata import ClassInfo


def _named_lists() -> dict[str, tuple[ClassInfo, ...]]:
    return {"cityscapes": CITYSCAPES.classes, "streethazards": STREETHAZARDS.classes}


def generated_color(index: int) -> tuple[int, int, int]:
    """PASCAL VOC's palette rule: the bits of ``index + 1`` spread over R, G and B from the
    most significant bit down, so neighbouring ids get clearly different colours."""
    value, rgb = index + 1, [0, 0, 0]
    for shift in range(7, -1, -1):
        for channel in range(3):
            rgb[channel] |= ((value >> channel) & 1) << shift
        value >>= 3
    return rgb[0], rgb[1], rgb[2]


def infos_for_names(names: Sequence[str]) -> tuple[ClassInfo, ...]:
    known = {c.name: c for c in _named_lists()["cityscapes"]}
    return tuple(known.get(name, ClassInfo(name, False, generated_color(i))) for i, name in enumerate(names))


def resolve_classes(
    spec: str | None, source_names: Sequence[str] | None, count: int | None, thing_classes: str | None, source: str
) -> tuple[ClassInfo, ...]:
    """The known classes of imported weights (see the module docstring); ``count`` is the
    number the weights fix, ``None`` for backbone-only weights."""
    named = _named_lists()
    if spec is not None and spec in named:
        classes = named[spec]
    elif spec is not None and (spec.endswith(".json") or Path(spec).is_file()):
        classes = load_class_list(Path(spec)).classes
    elif spec is not None:
        classes = infos_for_names([n.strip() for n in spec.split(",") if n.strip()])
    elif source_names is not None:
        classes = infos_for_names(source_names)
    elif count in (None, len(named["cityscapes"])):
        classes = named["cityscapes"]
    else:
        raise AnomaskError(f"{source}: the weights have {count} classes but no class names; pass --classes")
    if count is not None and len(classes) != count:
        raise AnomaskError(f"{source}: {len(classes)} class names given but the weights have {count} classes")
    if thing_classes is None:
        return tuple(classes)
    things = {n.strip() for n in thing_classes.split(",") if n.strip()}
    unknown = sorted(things - {c.name for c in classes})
    if unknown:
        raise AnomaskError(f"--thing-classes names classes the model does not have: {', '.join(unknown)}")
    return tuple(replace(c, is_thing=c.name in things) for c in classes)
