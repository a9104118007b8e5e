import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator
from anomask.evaluation.plots import colorize_panoptic, plot_curves, plot_histograms, plot_panel
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
