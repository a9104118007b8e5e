"""Write the synthetic default to disk: Cityscapes train/val plus Fishyscapes-style anomaly
test and anomaly validation splits with panoptic ground truth.

```
DIR/classes.json                                   class list (names, colours, label ids)
DIR/leftImg8bit/{train,val}/synthcity/<name>_leftImg8bit.png
DIR/gtFine/{train,val}/synthcity/<name>_gtFine_labelTrainIds.png   0..9, 255 ego vehicle
DIR/gtFine/{train,val}/synthcity/<name>_gtFine_instanceIds.png     uint16, labelId*1000+k
DIR/anomaly/images/<name>.png
DIR/anomaly/labels_masks/<name>.png                0 inlier, 1 anomaly, 255 void
DIR/anomaly/semantic/<name>.png                    train ids, 254 on anomalies
DIR/anomaly/instances/<name>.png                   uint16 ids of things and anomalies
DIR/anomaly/objects.json                           per image: its group, its objects
DIR/anomaly_val/...                                the same layout: the anomaly validation split
DIR/synth.json                                     the settings (written last)
```

Frame ``i`` of a split is rendered from its own generator (seed, split, i), so a frame
does not change when other counts change (adding the validation split left every test
frame byte-identical); every test image takes its anomalies from one group, ``seen`` for
even and ``unseen`` for odd indices. The anomaly validation split (threshold calibration
and model selection in ``anomask train``) holds only ``seen`` objects: the unseen ones
appear in the test split and nowhere else.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.files import write_bytes_atomic
from anomask.models.metadata import IGNORE_ID
from anomask.training.data.imageio import write_png
from anomask.training.data.synthetic.labels import ANOMALY, SYNTH_CLASSES
from anomask.training.data.synthetic.objects import GROUPS, cutouts
from anomask.training.data.synthetic.scene import Frame, render_frame

CITY = "synthcity"
ANOMALY_TEST = "anomaly"
ANOMALY_VAL = "anomaly_val"
SPLIT_STREAMS = {"train": 0, "val": 1, ANOMALY_TEST: 2, ANOMALY_VAL: 3}
EGO_VEHICLE_LABEL_ID = 1
"""Cityscapes label id of the ego vehicle (void)."""
REFERENCE_AREA = 256 * 512
MIN_ANOMALY_PIXELS = 400
"""Least anomaly size (before occlusion) at 256x512; scaled with the image area."""
FORMAT_VERSION = 2
"""2: with the anomaly validation split (format 1 had none; its other frames are the same)."""


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    train: int = 200
    val: int = 50
    test: int = 50
    height: int = 256
    width: int = 512
    anomaly_val: int = 30
    """Frames of the anomaly validation split (seen objects only)."""

    def __post_init__(self) -> None:
        if min(self.train, self.val, self.test, self.anomaly_val) < 0:
            raise AnomaskError("frame counts must not be negative")
        if self.height < 32 or self.width < 32:
            raise AnomaskError(f"image size {self.height}x{self.width} is too small (at least 32x32)")


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLIT_STREAMS[split], index])))


def frame_name(split: str, index: int) -> str:
    return f"{split}_{index:06d}" if split in (ANOMALY_TEST, ANOMALY_VAL) else f"{CITY}_{index:06d}_000019"


def frame_group(split: str, index: int) -> str:
    """Where a frame's anomalies come from: test frames alternate ``seen`` / ``unseen``,
    validation frames are all ``seen``; "" for the Cityscapes splits (no anomalies)."""
    if split == ANOMALY_TEST:
        return GROUPS[index % 2]
    return "seen" if split == ANOMALY_VAL else ""


def instance_ids(frame: Frame) -> np.ndarray:
    """Cityscapes ``*_instanceIds.png``: label id per pixel, ``labelId * 1000 + k`` on the
    k-th (0-based) instance of a thing class, 1 on the ego vehicle."""
    lut = np.full(256, EGO_VEHICLE_LABEL_ID, dtype=np.uint16)
    lut[: len(SYNTH_CLASSES.label_ids)] = SYNTH_CLASSES.label_ids
    out = lut[frame.semantic]
    per_class: dict[int, int] = {}
    for instance in frame.objects:
        k = per_class.get(instance.category, 0)
        per_class[instance.category] = k + 1
        out[frame.instances == instance.id] = SYNTH_CLASSES.label_ids[instance.category] * 1000 + k
    return out


def _render(config: SynthConfig, split: str, index: int) -> tuple[Frame, str]:
    rng = frame_rng(config.seed, split, index)
    group = frame_group(split, index)
    if not group:
        return render_frame(rng, config.height, config.width), ""
    count = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    min_area = MIN_ANOMALY_PIXELS * config.height * config.width / REFERENCE_AREA
    return render_frame(rng, config.height, config.width, cutouts(group), count, min_area), group


def _write_cityscapes(root: Path, split: str, name: str, frame: Frame) -> None:
    labels = root / "gtFine" / split / CITY
    write_png(root / "leftImg8bit" / split / CITY / f"{name}_leftImg8bit.png", frame.image)
    write_png(labels / f"{name}_gtFine_labelTrainIds.png", frame.semantic)
    write_png(labels / f"{name}_gtFine_instanceIds.png", instance_ids(frame))


def _write_anomaly(root: Path, split: str, name: str, frame: Frame) -> None:
    folder = root / split
    anomaly = (frame.semantic == ANOMALY).astype(np.uint8)
    anomaly[frame.semantic == IGNORE_ID] = IGNORE_ID
    write_png(folder / "images" / f"{name}.png", frame.image)
    write_png(folder / "labels_masks" / f"{name}.png", anomaly)
    write_png(folder / "semantic" / f"{name}.png", frame.semantic)
    write_png(folder / "instances" / f"{name}.png", frame.instances.astype(np.uint16))


def _prepare_folder(root: Path) -> None:
    """Refuse a non-empty folder unless it holds an earlier synthetic dataset, whose own
    subfolders are then removed (so no stale frames stay)."""
    if root.exists() and not root.is_dir():
        raise AnomaskError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / "synth.json").is_file():
            raise AnomaskError(
                f"{root}: folder is not empty and holds no synthetic dataset (synth.json); choose another --out"
            )
        (root / "synth.json").unlink()
        for sub in ("leftImg8bit", "gtFine", ANOMALY_TEST, ANOMALY_VAL):
            shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)


def _write_split(
    root: Path, config: SynthConfig, split: str, count: int, progress: Callable[[str, int, int], None] | None
) -> None:
    records = []
    for index in range(count):
        frame, group = _render(config, split, index)
        name = frame_name(split, index)
        if group:
            _write_anomaly(root, split, name, frame)
            objects = [
                {"instance": o.id, "name": o.name, "pixels": int((frame.instances == o.id).sum())}
                for o in frame.objects
                if o.category == ANOMALY
            ]
            records.append({"name": name, "group": group, "objects": objects})
        else:
            _write_cityscapes(root, split, name, frame)
        if progress is not None:
            progress(split, index + 1, count)
    if records:
        write_bytes_atomic(root / split / "objects.json", (json.dumps({"images": records}, indent=1) + "\n").encode())


def _write_settings(root: Path, config: SynthConfig) -> None:
    settings = {
        "format": FORMAT_VERSION,
        **asdict(config),
        "groups": {g: [c.source.name for c in cutouts(g)] for g in GROUPS},
    }
    write_bytes_atomic(root / "synth.json", (json.dumps(settings, indent=1) + "\n").encode())


def generate(root: Path, config: SynthConfig, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Render and write every split; ``progress(split, done, total)`` after each frame."""
    root = Path(root)
    _prepare_folder(root)
    SYNTH_CLASSES.save(root / "classes.json")
    splits = (
        ("train", config.train),
        ("val", config.val),
        (ANOMALY_TEST, config.test),
        (ANOMALY_VAL, config.anomaly_val),
    )
    for split, count in splits:
        _write_split(root, config, split, count, progress)
    _write_settings(root, config)


def default_root() -> Path:
    """Where ``dataset: synthetic`` lives: ``$ANOMASK_SYNTHETIC`` or the user cache."""
    if os.environ.get("ANOMASK_SYNTHETIC"):
        return Path(os.environ["ANOMASK_SYNTHETIC"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "anomask" / "synthetic"


def ensure_generated(root: Path, config: SynthConfig = SynthConfig()) -> None:
    """The synthetic default ``anomask train`` and ``anomask eval`` use: written with
    ``config`` when ``root`` holds none; a dataset written before the anomaly validation
    split existed (format 1) gets that split added with its own settings (seed, size) and
    keeps every other file (those frames would come out byte-identical)."""
    root = Path(root)
    settings_file = root / "synth.json"
    if not settings_file.is_file():
        print(
            f"generating the synthetic default in {root} (once; set ANOMASK_SYNTHETIC to choose the folder)", flush=True
        )
        generate(root, config)
        return
    try:
        settings = json.loads(settings_file.read_text())
        stored = SynthConfig(**{f.name: settings[f.name] for f in fields(SynthConfig) if f.name in settings})
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise AnomaskError(f"{settings_file}: unreadable synthetic dataset settings ({error!r})") from error
    if settings.get("format", 1) >= FORMAT_VERSION:
        return
    print(
        f"adding the anomaly validation split ({stored.anomaly_val} frames) to the synthetic default in {root}",
        flush=True,
    )
    shutil.rmtree(root / ANOMALY_VAL, ignore_errors=True)
    _write_split(root, stored, ANOMALY_VAL, stored.anomaly_val, None)
    _write_settings(root, stored)
