"""Which anomaly split validation and threshold calibration read, and the record of it."""

from anomask.training.config import DataConfig
from anomask.training.data.synthetic import SynthConfig, generate
from anomask.training.data_pipeline import open_anomaly_split


def test_the_validation_split_is_preferred_and_a_missing_one_falls_back_to_the_test_split(tiny_synthetic, tmp_path):
    chosen = open_anomaly_split(str(tiny_synthetic), DataConfig(dataset=str(tiny_synthetic)))
    assert chosen.split == "anomaly_val" and not chosen.test_split and len(chosen.dataset) == 2
    assert {chosen.dataset.group(i) for i in range(len(chosen.dataset))} == {"seen"}
    assert chosen.record() == {
        "dataset": str(tiny_synthetic),
        "root": str(tiny_synthetic.resolve()),
        "split": "anomaly_val",
        "test_split": False,
    }

    older = tmp_path / "no-validation-split"  # e.g. a Fishyscapes-layout folder with only anomaly/
    generate(older, SynthConfig(train=0, val=0, test=2, anomaly_val=0, height=48, width=96))
    chosen = open_anomaly_split(str(older), DataConfig(dataset="mine"))
    assert chosen.split == "anomaly" and chosen.test_split
    assert chosen.record() == {"dataset": "mine", "root": str(older.resolve()), "split": "anomaly", "test_split": True}
    assert open_anomaly_split(str(older), DataConfig(anomaly_split=None)) is None
