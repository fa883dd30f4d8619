"""TFClassifier from a pretrained network (baseModel), given bad input: each a clear error
before any training job (a missing or unreadable base file, a SavedModel folder, an unknown
feature layer, features or an input shape the base cannot take, another body beside the base)."""

from __future__ import annotations

import pytest
from pyspark.ml.linalg import Vectors
from transfer_support import QUICK

from sparktf import TFClassifier

pytest_plugins = ("transfer_fixtures",)


def test_a_missing_base_file_is_named(quadrants, tmp_path):
    missing = str(tmp_path / "nowhere.keras")
    with pytest.raises(ValueError, match=r"'baseModel' .* existing \.keras file.*nowhere\.keras"):
        TFClassifier(baseModel=missing, **QUICK).fit(quadrants[0])


def test_a_file_that_is_not_a_keras_model_is_refused(quadrants, tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    with pytest.raises(ValueError, match=r"'baseModel' .* must be a \.keras file .*notes\.keras"):
        TFClassifier(baseModel=str(path), **QUICK).fit(quadrants[0])


def test_a_saved_model_folder_is_refused_with_the_way_to_a_keras_file(quadrants, tmp_path):
    folder = tmp_path / "exported"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ValueError, match=r"is a TensorFlow SavedModel folder.*model\.save"):
        TFClassifier(baseModel=str(folder), **QUICK).fit(quadrants[0])


def test_an_unknown_feature_layer_lists_the_bases_layers(bases, quadrants):
    with pytest.raises(ValueError, match=r"'featureLayer' .* Got 'embedding'.*'embed', 'classes'"):
        TFClassifier(baseModel=bases[0], featureLayer="embedding", **QUICK).fit(quadrants[0])


def test_features_the_base_cannot_take_are_refused(bases, spark):
    narrow = spark.createDataFrame([(Vectors.dense([0.0] * 10), float(i % 2)) for i in range(8)])
    narrow = narrow.toDF("features", "label")
    with pytest.raises(ValueError, match=r"inputs of shape \[16, 16, 1\] \(256 values\).* 10"):
        TFClassifier(baseModel=bases[0], **QUICK).fit(narrow)


def test_an_input_shape_that_disagrees_with_the_base_is_refused(bases, quadrants):
    with pytest.raises(ValueError, match=r"'inputShape' .* input shape is \[16, 16, 1\]"):
        TFClassifier(baseModel=bases[0], inputShape=[256], **QUICK).fit(quadrants[0])


@pytest.mark.parametrize(
    ("other", "value"), [("convLayers", [4]), ("kerasModel", '{"class_name": "Sequential"}')]
)
def test_a_base_with_another_body_is_refused(other, value):
    clf = TFClassifier(baseModel="base.keras", **{other: value})
    with pytest.raises(ValueError, match=rf"'baseModel' .* cannot be combined with '{other}'"):
        clf._training_spec()
