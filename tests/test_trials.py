"""Trials of a search: each param map's own data Params, failed trials, failed refits, seeds."""

from __future__ import annotations

import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import ParamGridBuilder
from pyspark.sql import functions as F

from sparktf import TFClassifier

FAST = {"epochs": 3, "batchSize": 128, "learningRate": 0.01, "hiddenLayers": [16]}


def _accuracy():
    return MulticlassClassificationEvaluator(metricName="accuracy")


def _two_feature_columns(df):
    """``f1``: all 64 pixels; ``f2``: the top half of the image (32 pixels); no ``features``."""
    pixels = vector_to_array("features")
    return df.select("image_id", "label", pixels.alias("f1"), F.slice(pixels, 1, 32).alias("f2"))


def _predictions(model, df):
    rows = model.transform(df).orderBy("image_id").select("prediction").collect()
    return [r[0] for r in rows]


def test_grid_over_features_col_trains_each_map_on_its_own_column(digits):
    train, test = (_two_feature_columns(df) for df in digits)
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.featuresCol, ["f1", "f2"]).build()
    models = dict(clf.fitMultiple(train, grid))
    assert [models[i].getFeaturesCol() for i in (0, 1)] == ["f1", "f2"]
    assert [models[i].numFeatures for i in (0, 1)] == [64, 32]
    # Each model reads its own column: blanking the other column changes none of its predictions.
    zeros = F.array_repeat(F.lit(0.0), 64)
    no_f1 = test.withColumn("f1", zeros)
    no_f2 = test.withColumn("f2", F.slice(zeros, 1, 32))
    assert _predictions(models[0], test) == _predictions(models[0], no_f2)
    assert _predictions(models[1], test) == _predictions(models[1], no_f1)
    assert _accuracy().evaluate(models[0].transform(test)) > 0.8
    assert _accuracy().evaluate(models[1].transform(test)) > 0.5


def test_grid_over_class_count_and_input_shape_uses_each_maps_value(digits):
    train, _ = digits
    clf = TFClassifier(inputShape=[4, 4], **FAST)  # the base value fits no feature vector
    grid = [
        {clf.inputShape: [8, 8], clf.convLayers: [4], clf.classCount: 12},
        {clf.inputShape: [64]},
    ]
    models = dict(clf.fitMultiple(train, grid))
    assert models[0].numClasses == 12 and models[0].getClassCount() == 12
    assert models[0].keras_model().get_layer("conv0").filters == 4
    assert models[1].numClasses == 10 and models[1].getInputShape() == [64]


def test_grid_over_seeds_is_still_one_job(digits):
    train, _ = digits
    clf = TFClassifier(**{**FAST, "epochs": 1})
    grid = ParamGridBuilder().addGrid(clf.seed, [1, 2]).build()
    models = dict(clf.fitMultiple(train, grid))
    assert len({m.history["worker"]["jobGroup"] for m in models.values()}) == 1
    assert [models[i].getSeed() for i in (0, 1)] == [1, 2]


def test_a_bad_map_data_setting_fails_the_call(digits):
    train, _ = digits
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.featuresCol, ["features", "pixels"]).build()
    with pytest.raises(ValueError, match="expects a features column 'pixels'"):
        next(clf.fitMultiple(train, grid))
