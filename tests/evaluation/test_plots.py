import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.plots import (
    colorize_panoptic,
    panoptic_caption,
    panoptic_legend,
    plot_curves,
    plot_histograms,
    plot_panel,
)
from anomask.models.heads import PanopticLabels
from anomask.models.metadata import ClassInfo

CLASSES = (ClassInfo("road", False, (128, 64, 128)), ClassInfo("car", True, (0, 0, 142)))


def _accumulator(shift: float) -> PixelAnomalyAccumulator:
    rng = np.random.default_rng(0)
    accumulator = PixelAnomalyAccumulator()
    labels = (rng.random((40, 60)) < 0.2).astype(np.uint8)
    accumulator.update((rng.normal(size=(40, 60)) + shift * labels).astype(np.float32), labels)
    return accumulator


def _png(path):
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_curves_histogram_and_panel_write_pngs(tmp_path):
    strong, weak = _accumulator(2.0), _accumulator(0.3)
    _png(plot_curves({"eam": strong.curves(), "msp": weak.curves()}, tmp_path / "curves.png", title="FS L&F"))
    _png(plot_histograms({"eam": strong.histogram(30), "msp": weak.histogram()}, tmp_path / "hist.png", title="FS L&F"))
    classes, instances = np.zeros((40, 60), np.int32), np.zeros((40, 60), np.int32)
    classes[5:15, 5:15], instances[5:15, 5:15] = 1, 1
    classes[20:30, 30:40], instances[20:30, 30:40] = 254, 1
    panoptic = PanopticLabels(classes, instances)
    anomaly = (classes == 254).astype(np.uint8)
    image = np.zeros((40, 60, 3), np.uint8)
    _png(plot_panel(image, anomaly, anomaly.astype(np.float32), panoptic, CLASSES, tmp_path / "panel.png"))
    _png(plot_panel(image, anomaly, anomaly.astype(np.float32), None, CLASSES, tmp_path / "panel3.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png",
        "hist.png",
        "panel.png",
        "panel3.png",
    ]  # no temporaries left


def test_colorize_panoptic_colours():
    panoptic = PanopticLabels(
        np.array([[0, 1, 1], [254, 255, 0]], np.int32), np.array([[0, 1, 2], [1, 0, 0]], np.int32)
    )
    rgb = colorize_panoptic(panoptic, CLASSES)
    assert tuple(rgb[0, 0]) == (128, 64, 128)  # stuff: its class colour
    assert tuple(rgb[1, 1]) == (0, 0, 0)  # void
    assert rgb[1, 0, 0] > 100 and rgb[1, 0, 1] == 0 and rgb[1, 0, 2] > 100  # unknown: a magenta shade
    assert tuple(rgb[0, 1]) != tuple(rgb[0, 2])  # two car instances, two shades
    assert rgb[0, 1, 0] == 0 and rgb[0, 1, 2] > 0  # of the car colour


def test_plot_errors():
    with pytest.raises(AnomaskError, match="no score curves"):
        plot_curves({}, "unused.png")
    with pytest.raises(AnomaskError, match="no score histograms"):
        plot_histograms({}, "unused.png")
    with pytest.raises(AnomaskError, match="outside 0..255"):
        colorize_panoptic(PanopticLabels(np.array([[300]]), np.array([[0]])), CLASSES)


def _curves_figure(monkeypatch, curves):
    from anomask.evaluation import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: figures.append(figure) or path)
    plot_curves(curves, "unused.png")
    return figures[0].axes[0]


def test_pr_axis_is_logarithmic_at_a_small_anomaly_share(monkeypatch):
    """Issue 17: at a 1 % anomaly share the PR curves lay flat against zero."""
    rng = np.random.default_rng(0)
    labels = (rng.random((100, 100)) < 0.01).astype(np.uint8)
    rare = PixelAnomalyAccumulator()
    rare.update((rng.normal(size=labels.shape) + 2 * labels).astype(np.float32), labels)
    share = labels.mean()
    pr = _curves_figure(monkeypatch, {"eam": rare.curves()})
    assert pr.get_yscale() == "log" and pr.get_ylim()[0] == pytest.approx(share / 2)
    assert any(f"chance ({100 * share:.3g} % anomaly pixels)" in t.get_text() for t in pr.get_legend().get_texts())
    pr = _curves_figure(monkeypatch, {"eam": _accumulator(2.0).curves()})  # a 20 % share: linear
    assert pr.get_yscale() == "linear" and pr.get_ylim() == (0, 1.02)


def test_panels_explain_their_colours():
    classes = np.full((4, 6), 255, np.int32)
    instances = np.zeros((4, 6), np.int32)
    void = PanopticLabels(classes.copy(), instances.copy())
    assert panoptic_caption(void) == "all void: no segment kept"
    assert panoptic_legend(void, CLASSES) == {"void": (0, 0, 0)}
    classes[:2] = 0
    assert panoptic_caption(PanopticLabels(classes, instances)) == "no unknown segments"
    classes[2:, :2], instances[2:, :2] = 254, 1
    classes[2:, 4:], instances[2:, 4:] = 254, 2
    labels = PanopticLabels(classes, instances)
    assert panoptic_caption(labels) == "2 unknown segments"
    assert panoptic_legend(labels, CLASSES) == {"road": (128, 64, 128), "unknown": (255, 0, 255), "void": (0, 0, 0)}


def test_panel_has_both_legends_and_the_caption(monkeypatch):
    from anomask.evaluation import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: figures.append(figure) or path)
    void = PanopticLabels(np.full((8, 8), 255, np.int32), np.zeros((8, 8), np.int32))
    truth = np.zeros((8, 8), np.uint8)
    plot_panel(np.zeros((8, 8, 3), np.uint8), truth, truth.astype(np.float32), void, CLASSES, "unused.png")
    axes = figures[0].axes
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["inlier", "anomaly", "ignore"]
    assert [t.get_text() for t in axes[3].get_legend().get_texts()] == ["void"]
    assert axes[3].get_title() == "open-set panoptic\n(all void: no segment kept)"
