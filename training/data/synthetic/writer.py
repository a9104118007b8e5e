"""Write the synthetic default to disk: Cityscapes train/val plus a Fishyscapes-style
anomaly test split with panoptic ground truth.

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
DIR/synth.json                                     the settings (written last)
```

Frame ``i`` of a split is rendered from its own generator (seed, split, i), so a frame
does not change when other counts change; every test image takes its anomalies from
one group, ``seen`` for even and ``unseen`` for odd indices.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID
from anomask.training.data.imageio import write_bytes_atomic, write_png
from anomask.training.data.synthetic.objects import GROUPS, cutouts
from anomask.training.data.synthetic.labels import ANOMALY, SYNTH_CLASSES
from anomask.training.data.synthetic.scene import Frame, render_frame

CITY = "synthcity"
SPLIT_STREAMS = {"train": 0, "val": 1, "anomaly": 2}
EGO_VEHICLE_LABEL_ID = 1
"""Cityscapes label id of the ego vehicle (void)."""
REFERENCE_AREA = 256 * 512
MIN_ANOMALY_PIXELS = 400
"""Least anomaly size (before occlusion) at 256x512; scaled with the image area."""
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    train: int = 200
    val: int = 50
    test: int = 50
    height: int = 256
    width: int = 512

    def __post_init__(self) -> None:
        if min(self.train, self.val, self.test) < 0:
            raise AnomaskError("frame counts must not be negative")
        if self.height < 32 or self.width < 32:
            raise AnomaskError(f"image size {self.height}x{self.width} is too small (at least 32x32)")


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLIT_STREAMS[split], index])))


def frame_name(split: str, index: int) -> str:
    return f"{CITY}_{index:06d}_000019" if split != "anomaly" else f"anomaly_{index:06d}"


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
    if split != "anomaly":
        return render_frame(rng, config.height, config.width), ""
    group = GROUPS[index % 2]
    count = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    min_area = MIN_ANOMALY_PIXELS * config.height * config.width / REFERENCE_AREA
    return render_frame(rng, config.height, config.width, cutouts(group), count, min_area), group


def _write_cityscapes(root: Path, split: str, name: str, frame: Frame) -> None:
    labels = root / "gtFine" / split / CITY
    write_png(root / "leftImg8bit" / split / CITY / f"{name}_leftImg8bit.png", frame.image)
    write_png(labels / f"{name}_gtFine_labelTrainIds.png", frame.semantic)
    write_png(labels / f"{name}_gtFine_instanceIds.png", instance_ids(frame))


def _write_anomaly(root: Path, name: str, frame: Frame) -> None:
    folder = root / "anomaly"
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
            raise AnomaskError(f"{root}: folder is not empty and holds no synthetic dataset (synth.json); choose another --out")
        (root / "synth.json").unlink()
        for sub in ("leftImg8bit", "gtFine", "anomaly"):
            shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)


def generate(root: Path, config: SynthConfig, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Render and write every split; ``progress(split, done, total)`` after each frame."""
    root = Path(root)
    _prepare_folder(root)
    SYNTH_CLASSES.save(root / "classes.json")
    records = []
    for split, count in (("train", config.train), ("val", config.val), ("anomaly", config.test)):
        for index in range(count):
            frame, group = _render(config, split, index)
            name = frame_name(split, index)
            if split == "anomaly":
                _write_anomaly(root, name, frame)
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
    if config.test:
        write_bytes_atomic(root / "anomaly" / "objects.json", (json.dumps({"images": records}, indent=1) + "\n").encode())
    settings = {"format": FORMAT_VERSION, **asdict(config), "groups": {g: [c.source.name for c in cutouts(g)] for g in GROUPS}}
    write_bytes_atomic(root / "synth.json", (json.dumps(settings, indent=1) + "\n").encode())
