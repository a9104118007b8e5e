import numpy as np

from anomask.export.frames import fit_frame, resize_map


def test_fit_frame_keeps_a_fitting_frame_and_averages_when_shrinking():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[::2, ::2] = 200  # a checkerboard of 2x2 cells: area averaging gives 50 everywhere
    assert fit_frame(frame, (4, 4)) is frame
    small = fit_frame(frame, (2, 2))
    assert small.shape == (2, 2, 3) and np.all(small == 50)
    assert fit_frame(small, (4, 4)).shape == (4, 4, 3)


def test_resize_map_never_invents_ids_between_classes():
    ids = np.array([[0, 10], [10, 0]], np.uint8)
    grown = resize_map(ids, (4, 4), ids=True)
    assert set(np.unique(grown)) == {0, 10}
    scores = resize_map(ids.astype(np.float32), (4, 4), ids=False)
    assert 0 < scores[1, 1] < 10  # bilinear between the two
