"""TFClassifier and TFClassificationModel saved and loaded, alone and in a Pipeline; the model
cache of the Python workers; and saved folders refused at load: a truncated network, or a layout
written by a newer sparktf."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from tfclassifier_support import SMALL, _probabilities

from sparktf import TFClassificationModel, TFClassifier

pytest_plugins = ("tfclassifier_fixtures",)


def test_model_save_load_gives_identical_predictions(small_model, digits, tmp_path):
    _, test = digits
    path = str(tmp_path / "model")
    small_model.write().overwrite().save(path)
    assert os.path.isfile(os.path.join(path, "model.keras"))
    loaded = TFClassificationModel.load(path)
    assert loaded.uid == small_model.uid
    assert loaded.getHiddenLayers() == SMALL["hiddenLayers"]
    assert loaded.numClasses == 10 and loaded.numFeatures == 64
    assert loaded.history["epochs"] == small_model.history["epochs"]
    np.testing.assert_array_equal(
        _probabilities(small_model.transform(test)), _probabilities(loaded.transform(test))
    )
    # The weights file is a plain Keras file users can open on their own.
    import keras

    net = keras.saving.load_model(os.path.join(path, "model.keras"), compile=False)
    assert net.output_shape == (None, 10)


def test_estimator_save_load_keeps_params(spark, tmp_path):
    clf = TFClassifier(hiddenLayers=[7, 5], optimizer="sgd", learningRate=0.3, epochs=9, seed=5)
    clf.save(str(tmp_path / "clf"))
    loaded = TFClassifier.load(str(tmp_path / "clf"))
    assert loaded.uid == clf.uid
    for name in ("hiddenLayers", "optimizer", "learningRate", "epochs", "seed", "batchSize"):
        assert loaded.getOrDefault(name) == clf.getOrDefault(name), name


def test_pipeline_fit_save_load_predict_round_trip(spark, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + 2 * x[:, 1] - x[:, 2] > 0).astype(float)
    df = spark.createDataFrame(
        [
            (int(i), *map(float, row), float(label))
            for i, (row, label) in enumerate(zip(x, y, strict=True))
        ],
        ["image_id", "a", "b", "c", "label"],
    )
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=["a", "b", "c"], outputCol="features"),
            TFClassifier(hiddenLayers=[16], epochs=15, learningRate=0.02),
        ]
    )
    fitted = pipeline.fit(df)
    before = _probabilities(fitted.transform(df))
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        fitted.transform(df)
    )
    assert accuracy > 0.9
    pipeline.save(str(tmp_path / "pipeline"))
    assert len(Pipeline.load(str(tmp_path / "pipeline")).getStages()) == 2
    fitted.save(str(tmp_path / "fitted"))
    loaded = PipelineModel.load(str(tmp_path / "fitted"))
    assert isinstance(loaded.stages[-1], TFClassificationModel)
    np.testing.assert_array_equal(before, _probabilities(loaded.transform(df)))


def test_model_cache_loads_once_per_worker(cache_run):
    # On local[1] one reused Python worker runs every task, so each probe sees the process that
    # ran the transform before it: the first transform loaded the model there, the second was
    # served from its cache (no load at all).
    first, second = cache_run["probes"]
    ((pid, cached, loads),) = first
    assert cached and loads >= 1, first
    assert second == [[pid, True, loads]], (first, second)


def test_model_cache_is_a_bounded_lru():
    from sparktf._loading import ModelCache

    cache = ModelCache(capacity=2)
    calls = []
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get(key, lambda key=key: calls.append(key) or key.upper())
    assert calls == ["a", "b", "c", "b"]  # "b" was evicted by "c", "a" stayed (recently used)
    assert "a" in cache and "b" in cache and "c" not in cache


def _bump_format(path, version):
    """Rewrite a saved stage's metadata as if a newer sparktf had written it."""
    import glob
    import json

    (part,) = glob.glob(os.path.join(path, "metadata", "part-*"))
    with open(part) as handle:
        metadata = json.loads(handle.read())
    metadata["sparktfFormat"] = version
    with open(part, "w") as handle:
        handle.write(json.dumps(metadata))
    _drop_checksum(part)


def _drop_checksum(path):
    """Remove the checksum Hadoop's local file system keeps beside a file we rewrote."""
    folder, name = os.path.split(path)
    crc = os.path.join(folder, f".{name}.crc")
    if os.path.exists(crc):
        os.remove(crc)


def test_a_folder_saved_by_a_newer_sparktf_is_refused(small_model, tmp_path):
    from sparktf import TFGraphTransformer

    model_path = str(tmp_path / "model")
    small_model.save(model_path)
    _bump_format(model_path, 2)
    with pytest.raises(ValueError, match=r"saved by a newer sparktf \(layout version 2\)"):
        TFClassificationModel.load(model_path)
    stage_path = str(tmp_path / "stage")
    TFGraphTransformer(modelPath="/models/m.pb", inputCol="x", outputCol="y").save(stage_path)
    _bump_format(stage_path, 7)
    with pytest.raises(ValueError, match=r"saved by a newer sparktf \(layout version 7\)"):
        TFGraphTransformer.load(stage_path)


def test_a_corrupt_saved_network_is_refused_when_loading(small_model, tmp_path):
    path = str(tmp_path / "model")
    small_model.save(path)
    keras_file = os.path.join(path, "model.keras")
    with open(keras_file, "rb") as handle:
        data = handle.read()
    with open(keras_file, "wb") as handle:
        handle.write(data[: len(data) // 2])  # a partial copy
    _drop_checksum(keras_file)
    with pytest.raises(ValueError, match=r"model.keras is not a readable Keras model file"):
        TFClassificationModel.load(path)
