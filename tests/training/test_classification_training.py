"""TFClassifier's training: seeds, the history a fit reports, validation rows and early
stopping, the kinds of feature column it trains on, and the convolutional network."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F
from tfclassifier_support import SMALL, _probabilities

from sparktf import TFClassifier

pytest_plugins = ("tfclassifier_fixtures",)


def test_seed_gives_identical_predictions_on_rerun(digits):
    train, test = digits
    params = {**SMALL, "epochs": 2, "seed": 123}
    first = _probabilities(TFClassifier(**params).fit(train).transform(test))
    second = _probabilities(TFClassifier(**params).fit(train).transform(test))
    np.testing.assert_array_equal(first, second)
    other = _probabilities(TFClassifier(**{**params, "seed": 124}).fit(train).transform(test))
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TFClassifier(seed=None),
        lambda: TFClassifier(seed=5).setParams(seed=None),
        lambda: TFClassifier(seed=5).setSeed(None),
    ],
)
def test_seed_none_is_refused_not_ignored(make):
    with pytest.raises(TypeError, match=r"'seed' param of TFClassifier must be an int\. Got seed="):
        make()


def test_other_none_keywords_still_leave_params_alone():
    clf = TFClassifier(seed=5, hiddenLayers=[8]).setParams(hiddenLayers=None, epochs=2)
    assert (clf.getSeed(), clf.getHiddenLayers(), clf.getEpochs()) == (5, [8], 2)


def test_history_reports_epochs_time_and_worker(small_model):
    history = small_model.history
    assert len(history["epochs"]["loss"]) == SMALL["epochs"]
    assert len(history["epochs"]["accuracy"]) == SMALL["epochs"]
    assert history["epochs"]["loss"][-1] < history["epochs"]["loss"][0]
    assert history["seconds"] > 0
    assert history["worker"]["pid"] != os.getpid()  # trained in a Python worker, not the driver
    assert history["worker"]["threads"] == 1  # spark.task.cpus
    assert small_model.trainingFailure is None


def test_validation_indicator_and_early_stopping(digits):
    train, _ = digits
    marked = train.withColumn("is_val", (F.col("image_id") % 5) == 0)
    model = TFClassifier(
        hiddenLayers=[64],
        epochs=300,
        batchSize=256,
        learningRate=0.01,
        validationIndicatorCol="is_val",
        earlyStoppingPatience=2,
    ).fit(marked)
    epochs = model.history["epochs"]
    assert "val_loss" in epochs and "val_accuracy" in epochs
    assert len(epochs["loss"]) < 300  # early stopping ended training
    assert max(epochs["val_accuracy"]) > 0.9
    # ... and kept the best epoch's weights: the model's loss on the validation rows is the best
    # epoch's recorded val_loss, not the last epoch's.
    best, last = min(epochs["val_loss"]), epochs["val_loss"][-1]
    assert last > best * (1 + 1e-3)
    held_out = model.transform(marked.where("is_val"))
    val_loss = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(held_out)
    assert val_loss == pytest.approx(best, rel=1e-4)


def test_validation_split_reports_validation_metrics(digits):
    train, _ = digits
    model = TFClassifier(**SMALL, validationSplit=0.25).fit(train)
    assert len(model.history["epochs"]["val_loss"]) == SMALL["epochs"]


def test_array_and_sparse_feature_columns(spark, digits):
    train, test = digits
    arrays = train.withColumn("features", vector_to_array("features", "float32"))
    model = TFClassifier(**SMALL).fit(arrays)
    out = model.transform(test.withColumn("features", vector_to_array("features")))
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out)
    assert acc > 0.85

    sparse = spark.createDataFrame(
        [
            (Vectors.sparse(4, [0], [1.0]), 0.0),
            (Vectors.sparse(4, [1], [1.0]), 1.0),
            (Vectors.dense([0.9, 0.0, 0.1, 0.0]), 0.0),
            (Vectors.dense([0.0, 1.0, 0.0, 0.2]), 1.0),
        ]
        * 10,
        ["features", "label"],
    )
    model = TFClassifier(hiddenLayers=[8], epochs=30, learningRate=0.05).fit(sparse)
    predictions = [r.prediction for r in model.transform(sparse).collect()]
    assert predictions == [0.0, 1.0, 0.0, 1.0] * 10


def test_convolutional_network_with_input_shape(digits):
    train, test = digits
    model = TFClassifier(
        convLayers=[8], inputShape=[8, 8], hiddenLayers=[32], epochs=4, learningRate=0.01
    ).fit(train)
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(model.transform(test))
    assert acc > 0.85
    assert "conv0" in [layer.name for layer in model.keras_model().layers]
