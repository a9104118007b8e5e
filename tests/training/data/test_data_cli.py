import cv2
import pytest

from anomask.cli import main


def test_synth_stats_and_sheet(tmp_path, capsys):
    root = tmp_path / "synth"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(root),
                "--train",
                "2",
                "--val",
                "0",
                "--test",
                "2",
                "--anomaly-val",
                "1",
                "--size",
                "64x128",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert "wrote 5 frames of 64x128" in capsys.readouterr().out
    assert main(["data", "stats", str(root)]) == 0
    out = capsys.readouterr().out
    assert "train: 2 frames of 64x128" in out and "road" in out and "unknown (254)" in out
    assert "anomaly pixels" in out and "seen" in out and "unseen" in out
    assert "anomaly_val: 1 frames of 64x128" in out
    sheet = tmp_path / "sheet.png"
    assert main(["data", "sheet", str(root), "--out", str(sheet), "--frames", "1", "--width", "64"]) == 0
    image = cv2.imread(str(sheet))
    label_width = image.shape[1] - 4 * 64
    assert 60 < label_width < 120 and image.shape[0] == 18 + 2 * 32
    # Issue 17: the rows had no split labels. Each row's label strip holds text, the two differ.
    train_label, anomaly_label = image[18:50, :label_width], image[50:82, :label_width]
    assert (train_label < 128).any() and (anomaly_label < 128).any()
    assert (train_label != anomaly_label).any()


def test_bad_size_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synth", "--out", str(tmp_path), "--size", "256by512"])
    assert exit_info.value.code == 2 and "HEIGHTxWIDTH" in capsys.readouterr().err


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nothing")]) == 2
    assert "nothing: dataset folder not found" in capsys.readouterr().err
