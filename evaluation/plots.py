"""Report figures: PR and ROC curves per score, inlier/outlier score histograms (EAM
(Grcić et al., 2023), Fig. 3: relative pixel frequency per score bin, one bar series per
class) and qualitative panels (image, ground truth, anomaly map, open-set panoptic, with
legends of their colours). Every figure is written atomically (PNG); matplotlib runs headless
(Agg).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402  (backend first)
import numpy as np  # noqa: E402

from anomask.errors import AnomaskError  # noqa: E402
from anomask.evaluation.metrics.pixel_anomaly import ScoreCurves, ScoreHistogram  # noqa: E402
from anomask.files import write_bytes_atomic  # noqa: E402
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo  # noqa: E402

if TYPE_CHECKING:
    from anomask.models.heads import PanopticLabels

MAX_CURVE_POINTS = 2000
UNKNOWN_COLOR = (255, 0, 255)
IGNORE_COLOR = (0, 0, 0)
TRUTH_COLORS = {"inlier": 128, "anomaly": 255, "ignore": 0}
"""Grey levels of the ground-truth view of a panel."""
LOG_PRECISION_BELOW = 0.1
"""Anomaly pixel share under which the PR plot's precision axis is logarithmic: at a 1 %
share a linear axis shows every curve flat against zero."""


def _save(figure: plt.Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def _thin(*arrays: np.ndarray) -> list[np.ndarray]:
    """At most MAX_CURVE_POINTS evenly spaced points, keeping both ends."""
    size = arrays[0].size
    if size <= MAX_CURVE_POINTS:
        return list(arrays)
    keep = np.unique(np.linspace(0, size - 1, MAX_CURVE_POINTS).round().astype(np.int64))
    return [a[keep] for a in arrays]


def anomaly_share(curves: Mapping[str, ScoreCurves]) -> float:
    """The share of anomaly pixels: the precision at recall 1 (everything called anomalous),
    which is also the precision of a random score."""
    return min(float(curve.precision[-1]) for curve in curves.values())


def plot_curves(curves: Mapping[str, ScoreCurves], path: str | Path, title: str = "") -> Path:
    """PR (left) and ROC (right) of each score; the legend gives AP / AUROC. The PR plot marks
    the chance level (the anomaly share); below ``LOG_PRECISION_BELOW`` its precision axis is
    logarithmic, down to half the share."""
    if not curves:
        raise AnomaskError("no score curves to plot")
    share = anomaly_share(curves)
    figure, (pr, roc) = plt.subplots(1, 2, figsize=(12, 5))
    for name, curve in curves.items():
        recall, precision, fpr = _thin(curve.recall, curve.precision, curve.fpr)
        pr.plot(
            np.concatenate(([0.0], recall)),
            np.concatenate(([precision[0]], precision)),
            label=f"{name} (AP {100 * curve.ap:.2f})",
        )
        roc.plot(
            np.concatenate(([0.0], fpr)),
            np.concatenate(([0.0], recall)),
            label=f"{name} (AUROC {100 * curve.auroc:.2f})",
        )
    pr.axhline(share, color="0.5", linestyle="--", linewidth=1, label=f"chance ({100 * share:.3g} % anomaly pixels)")
    if 0 < share < LOG_PRECISION_BELOW:
        pr.set_yscale("log")
        pr.set(ylim=(share / 2, 1.05), title="precision-recall (log precision axis)")
    else:
        pr.set(ylim=(0, 1.02), title="precision-recall")
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1))
    roc.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    roc.axhline(0.95, color="0.5", linestyle="--", linewidth=1)
    roc.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="ROC (dashed: TPR 95 %)",
    )
    for axis in (pr, roc):
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower left" if axis is pr else "lower right", fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_histograms(histograms: Mapping[str, ScoreHistogram], path: str | Path, title: str = "") -> Path:
    """Relative frequency of inlier and outlier pixels per score bin, one panel per score side
    by side (EAM (Grcić et al., 2023), Fig. 3); filled step outlines, one patch per series."""
    if not histograms:
        raise AnomaskError("no score histograms to plot")
    columns = min(4, len(histograms))
    rows = -(-len(histograms) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for index, (axis, (score, histogram)) in enumerate(zip(axes.flat, histograms.items())):
        axis.stairs(histogram.inlier, histogram.edges, fill=True, alpha=0.55, label="inliers")
        axis.stairs(histogram.outlier, histogram.edges, fill=True, alpha=0.55, label="outliers")
        axis.set(xlabel=score, ylabel="relative pixel frequency" if index % columns == 0 else "")
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(histograms) :]:
        axis.axis("off")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def colorize_panoptic(panoptic: PanopticLabels, classes: Sequence[ClassInfo]) -> np.ndarray:
    """RGB view of a panoptic (class map, instance map) pair: stuff in its class colour, each
    thing instance a shade of its class colour, unknown instances shades of magenta, void
    black."""
    classes_map, instance = np.asarray(panoptic.classes), np.asarray(panoptic.instances)
    palette = np.zeros((256, 3), np.float64)
    palette[: len(classes)] = [c.color for c in classes]
    palette[UNKNOWN_ID] = UNKNOWN_COLOR
    palette[IGNORE_ID] = IGNORE_COLOR
    if classes_map.size and (classes_map.min() < 0 or classes_map.max() > 255):
        raise AnomaskError("panoptic map holds class ids outside 0..255")
    shade = np.where(instance > 0, 0.55 + 0.45 * ((instance * 0.618) % 1.0), 1.0)
    return (palette[classes_map] * shade[..., None]).clip(0, 255).astype(np.uint8)


def panoptic_legend(panoptic: PanopticLabels, classes: Sequence[ClassInfo]) -> dict[str, tuple[int, int, int]]:
    """Name -> colour of what the panoptic map holds (known classes, unknown, void)."""
    present = set(np.unique(np.asarray(panoptic.classes)).tolist())
    legend = {c.name: c.color for index, c in enumerate(classes) if index in present}
    if UNKNOWN_ID in present:
        legend["unknown"] = UNKNOWN_COLOR
    if IGNORE_ID in present:
        legend["void"] = IGNORE_COLOR
    return legend


def panoptic_caption(panoptic: PanopticLabels) -> str:
    """What a reader of the panoptic panel needs to know: an all-black panel is all void (no
    segment kept), and whether any unknown segment was found."""
    classes_map = np.asarray(panoptic.classes)
    if (classes_map == IGNORE_ID).all():
        return "all void: no segment kept"
    unknown = np.unique(np.asarray(panoptic.instances)[classes_map == UNKNOWN_ID]).size
    return f"{unknown} unknown segment{'s' if unknown != 1 else ''}" if unknown else "no unknown segments"


def _legend(axis: plt.Axes, colors: Mapping[str, tuple[int, int, int]]) -> None:
    handles = [
        matplotlib.patches.Patch(facecolor=np.array(color) / 255, edgecolor="0.5", label=name)
        for name, color in colors.items()
    ]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.1), ncol=3, fontsize=7, frameon=False)


def plot_panel(
    image: np.ndarray,
    anomaly_truth: np.ndarray,
    anomaly_score: np.ndarray,
    panoptic: PanopticLabels | None,
    classes: Sequence[ClassInfo],
    path: str | Path,
    title: str = "",
) -> Path:
    """One qualitative row: image, ground truth (inlier grey, anomaly white, ignore black, with
    a legend), anomaly score map and, when given, the open-set panoptic prediction with a
    legend of its colours and a caption saying what it holds (:func:`panoptic_caption`)."""
    truth_view = np.select(
        [anomaly_truth == 1, anomaly_truth == 0],
        [TRUTH_COLORS["anomaly"], TRUTH_COLORS["inlier"]],
        TRUTH_COLORS["ignore"],
    ).astype(np.uint8)
    views = [
        ("image", image, {}),
        ("ground truth", truth_view, {"cmap": "gray", "vmin": 0, "vmax": 255}),
        ("anomaly score", anomaly_score, {"cmap": "magma"}),
    ]
    if panoptic is not None:
        views.append(("open-set panoptic", colorize_panoptic(panoptic, classes), {}))
    figure, axes = plt.subplots(1, len(views), figsize=(4 * len(views), 3.2))
    for axis, (name, view, options) in zip(axes, views):
        shown = axis.imshow(view, **options)
        if name == "anomaly score":
            figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
        axis.set_title(name)
        axis.axis("off")
    _legend(axes[1], {name: (level,) * 3 for name, level in TRUTH_COLORS.items()})
    if panoptic is not None:
        _legend(axes[3], panoptic_legend(panoptic, classes))
        axes[3].set_title(f"open-set panoptic\n({panoptic_caption(panoptic)})")
    if title:
        figure.suptitle(title)
    return _save(figure, path)
