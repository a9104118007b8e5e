import pytest

from anomask.errors import AnomaskError
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata


def _metadata(**kwargs):
    classes = (
        ClassInfo("road", False, (128, 64, 128)),
        ClassInfo("sky", False, (70, 130, 180)),
        ClassInfo("car", True, (0, 0, 142)),
    )
    return ModelMetadata(classes=classes, architecture=ModelConfig.small(num_classes=3), **kwargs)


def test_json_round_trip_is_lossless():
    meta = _metadata(thresholds={"eam@tpr95": 0.25}, recipe="uno", command="anomask train")
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_refinement_defaults_to_stuff_except_road():
    assert _metadata().refinement_ids() == [1]
    assert _metadata(refinement_classes=(0,)).refinement_ids() == [0]


def test_class_count_must_match_architecture():
    with pytest.raises(AnomaskError, match="3 classes but the architecture has num_classes=5"):
        ModelMetadata(classes=_metadata().classes, architecture=ModelConfig.small(num_classes=5))


def test_bad_json_names_the_source():
    with pytest.raises(AnomaskError, match="model.safetensors: metadata is not valid JSON"):
        ModelMetadata.from_json("{", source="model.safetensors")
    with pytest.raises(AnomaskError, match="lacks architecture"):
        ModelMetadata.from_json('{"classes": []}')


def test_num_outputs_counts_negative_and_no_object():
    assert ModelConfig(num_classes=19).num_outputs == 20
    assert ModelConfig(num_classes=19, negative_class=True).num_outputs == 21
    with pytest.raises(AnomaskError, match="unknown model preset 'huge'"):
        ModelConfig.preset("huge")


def test_metadata_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, anomask.models.metadata; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
