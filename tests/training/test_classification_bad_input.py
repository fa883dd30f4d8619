"""Bad input to TFClassifier and TFClassificationModel: bad Params, missing or mistyped
columns, nulls, bad labels and shapes, and empty DataFrames are refused with clear errors before
training; rows a model cannot score are named."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from sparktf import TFClassifier

pytest_plugins = ("tfclassifier_fixtures",)


@pytest.fixture(scope="module")
def tiny(spark):
    return spark.createDataFrame(
        [(Vectors.dense([0.0, 1.0]), 0.0), (Vectors.dense([1.0, 0.0]), 1.0)] * 4,
        ["features", "label"],
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"batchSize": 0},
            r"The 'batchSize' param of TFClassifier must be an int in \[1, inf\)\. "
            r"Got 0 instead\.",
        ),
        (
            {"epochs": -1},
            r"The 'epochs' param of TFClassifier must be an int in \[1, inf\)\. "
            r"Got -1 instead\.",
        ),
        (
            {"learningRate": 0.0},
            r"The 'learningRate' param of TFClassifier must be a float in "
            r"\(0, inf\)\. Got 0\.0 instead\.",
        ),
        ({"learningRate": -0.1}, r"'learningRate' param .* Got -0\.1 instead"),
        (
            {"optimizer": "adamm"},
            r"The 'optimizer' param of TFClassifier must be one of 'adam', "
            r".*'rmsprop'.*\. Got 'adamm' instead\.",
        ),
        ({"dropout": 1.0}, r"The 'dropout' param of TFClassifier must be a float in \[0, 1\)"),
        (
            {"hiddenLayers": [0]},
            r"The 'hiddenLayers' param of TFClassifier must be a list of "
            r"ints >= 1\. Got \[0\] instead\.",
        ),
        ({"convLayers": [4]}, r"'convLayers' param of TFClassifier needs 'inputShape'"),
        ({"classCount": 1}, r"'classCount' param of TFClassifier must be 0 \(infer\) or an int"),
    ],
)
def test_bad_params_raise_before_any_spark_job(spark, tiny, params, message):
    sc = spark.sparkContext
    sc.setJobGroup("bad-params", "bad params")
    try:
        with pytest.raises(ValueError, match=message):
            TFClassifier(**params).fit(tiny)
        assert sc.statusTracker().getJobIdsForGroup("bad-params") == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def _df(spark, rows, schema):
    return spark.createDataFrame(rows, schema)


def test_missing_columns(tiny):
    with pytest.raises(ValueError, match=r"expects a features column 'pixels' \(featuresCol\)"):
        TFClassifier(featuresCol="pixels").fit(tiny)
    with pytest.raises(ValueError, match=r"expects a label column 'y' \(labelCol\)"):
        TFClassifier(labelCol="y").fit(tiny)


def test_wrong_column_types(spark):
    df = _df(spark, [("a", 0.0), ("b", 1.0)], "features string, label double")
    with pytest.raises(
        TypeError, match=r"must be an ml Vector or an array of numbers .* Got string"
    ):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0], "x"), ([0.0], "y")], "features array<double>, label string")
    with pytest.raises(TypeError, match=r"'label' \(labelCol\) .* must be numeric .* Got string"):
        TFClassifier().fit(df)


def test_transform_names_a_row_it_cannot_score(spark, small_model):
    """The transform runs the transformer's engine, whose messages name stage and column."""
    full = [float(i % 16) for i in range(64)]
    nulls = _df(spark, [(full,), (None,)], "features array<double>")
    with pytest.raises(
        Exception,
        match=r"TFClassificationModel cannot use the input \('features'\) of row \d+ .*null.*Drop",
    ):
        small_model.transform(nulls).collect()
    short = _df(spark, [(full,), ([1.0, 2.0, 3.0],)], "features array<double>")
    with pytest.raises(
        Exception,
        match=r"TFClassificationModel: shape mismatch for column 'features'.*\[64\].*3 values",
    ):
        small_model.transform(short).collect()
    # Integer arrays are cast on the JVM and score like the same values as doubles.
    ints = _df(spark, [([i % 16 for i in range(64)],)], "features array<int>")
    doubles = _df(spark, [(full,)], "features array<double>")
    np.testing.assert_allclose(
        small_model.transform(ints).first().probability.toArray(),
        small_model.transform(doubles).first().probability.toArray(),
    )


def test_null_features_and_labels(spark):
    df = _df(spark, [([1.0, 2.0], 0.0), (None, 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must not contain nulls. Got 1 null row\(s\) of 2"):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0, None], 0.0), ([0.0, 1.0], 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must hold finite numbers. Got 1 row\(s\)"):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0, 2.0], 0.0), ([0.0, 1.0], None)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"'label' \(labelCol\) .* must not contain nulls"):
        TFClassifier().fit(df)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0.0, 1.5], r"must hold integer class indices 0\.\.K-1\. Got 1\.5"),
        ([0.0, -1.0], r"must hold integer class indices 0\.\.K-1\. Got -1\.0"),
        ([1.0, 1.0], r"must hold at least 2 classes .* Got a single class: 1"),
    ],
)
def test_bad_labels(spark, labels, message):
    df = _df(
        spark,
        [([1.0, 2.0], labels[0]), ([0.0, 1.0], labels[1])],
        "features array<double>, label double",
    )
    with pytest.raises(ValueError, match=message):
        TFClassifier().fit(df)


def test_label_outside_class_count(tiny):
    with pytest.raises(ValueError, match=r"labels in \[0, 3\) because classCount=3. Got label 4"):
        TFClassifier(classCount=3).fit(tiny.withColumn("label", F.col("label") * 4))


def test_feature_vectors_of_different_lengths(spark):
    df = _df(spark, [([1.0, 2.0], 0.0), ([0.0], 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must hold vectors of one length. Got lengths \[1, 2\]"):
        TFClassifier().fit(df)


def test_input_shape_must_match_feature_size(tiny):
    with pytest.raises(
        ValueError,
        match=r"'inputShape' param of TFClassifier must have as many elements as each feature "
        r"vector \(2\)\. Got inputShape=\[3, 3\] \(9 elements\)",
    ):
        TFClassifier(inputShape=[3, 3]).fit(tiny)


def test_empty_dataframe(tiny):
    with pytest.raises(ValueError, match=r"cannot be fitted on an empty DataFrame"):
        TFClassifier().fit(tiny.limit(0))
