"""The training data path: lean DataFrames, one Arrow collect, compact broadcast, staging."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import functions as F

from sparktf import TFClassifier
from sparktf.datasets import arrays_to_dataframe
from sparktf.errors import DriverMemoryError, TrainingError
from sparktf.training import _data
from sparktf.training._data import compact_features
from sparktf.training._staging import resolve_staging_dir

FAST = {"hiddenLayers": [32], "epochs": 6, "batchSize": 64, "learningRate": 0.01}


def _accuracy(model, df) -> float:
    return MulticlassClassificationEvaluator(metricName="accuracy").evaluate(model.transform(df))


# -- DataFrames from arrays -----------------------------------------------------------------------


def test_arrays_to_dataframe_keeps_float32_values_in_small_partitions(spark):
    rng = np.random.default_rng(0)
    x = rng.random((3000, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 3000)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key, None)
    df = arrays_to_dataframe(spark, x, y)
    assert spark.conf.get(key, None) == before  # the narrowed batch size is restored
    # 784 float32 features per row: at most 1337 rows (about 4 MiB) per local partition.
    assert df.rdd.getNumPartitions() == 3
    rows = df.orderBy("image_id").select("features", "label").collect()
    got = np.array([r.features.toArray() for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(got, x.reshape(3000, -1))
    np.testing.assert_array_equal([r.label for r in rows], y.astype(float))


def test_compact_features_is_lossless():
    pixels = np.array([[0, 255], [17, 3]], dtype=np.float32)
    assert compact_features(pixels).dtype == np.uint8
    np.testing.assert_array_equal(compact_features(pixels), pixels)
    for values in ([[0.5, 1.0]], [[-1.0, 2.0]], [[0.0, 256.0]]):
        x = np.array(values, dtype=np.float32)
        assert compact_features(x) is x


def test_pixels_are_broadcast_as_uint8_and_train_like_floats(digits):
    train, test = digits
    spec = _data.DataSpec(stage="TFClassifier", features="features", label="label")
    with _data.training_data(spec, train) as data:
        assert data.x.dtype == np.uint8  # digits hold whole numbers 0..16
        assert data.num_features == 64 and data.num_classes == 10
    scaled = train.withColumn(
        "features", array_to_vector(F.transform(vector_to_array("features"), lambda v: v / 16.5))
    )
    with _data.training_data(spec, scaled) as data:
        assert data.x.dtype == np.float32  # fractions stay float32
    compact = _accuracy(TFClassifier(**FAST).fit(train), test)
    floats = _accuracy(
        TFClassifier(**FAST).fit(scaled),
        test.withColumn(
            "features",
            array_to_vector(F.transform(vector_to_array("features"), lambda v: v / 16.5)),
        ),
    )
    assert compact >= 0.93
    assert abs(compact - floats) <= 0.02  # standardized inputs: the scale does not matter


# -- driver memory --------------------------------------------------------------------------------


def test_data_too_large_for_the_driver_fails_before_the_collect(digits, monkeypatch):
    train, _ = digits
    monkeypatch.setattr(_data, "driver_heap_bytes", lambda spark: 100_000)

    def collect(*args):
        raise AssertionError("the data was collected")

    monkeypatch.setattr(_data, "collect_training_data", collect)
    with pytest.raises(
        DriverMemoryError,
        match=r"training data \(\d+ rows x 64 features, 0 MiB as float32\) is too large to "
        r"collect on this driver, whose JVM heap is 0 MiB.*spark\.driver\.memory.*set "
        r"maxBroadcastBytes below \d+",
    ):
        TFClassifier(**FAST).fit(train)


# -- staging --------------------------------------------------------------------------------------


@pytest.fixture
def staging_log(caplog):
    """The folders sparktf staged data in, from its log."""
    caplog.set_level(logging.INFO, logger="sparktf")

    def folders() -> list[str]:
        return [
            r.getMessage().rsplit(" under ", 1)[1]
            for r in caplog.records
            if r.name == "sparktf" and " staging " in r.getMessage()
        ]

    return folders


def test_staged_fit_matches_broadcast_quality_and_cleans_up(digits, tmp_path, staging_log):
    train, test = digits
    staged = TFClassifier(**FAST, maxBroadcastBytes=0, stagingDir=str(tmp_path)).fit(train)
    assert len(staging_log()) == 1 and staging_log()[0].startswith(str(tmp_path))
    broadcast = TFClassifier(**FAST).fit(train)
    assert len(staging_log()) == 1  # below maxBroadcastBytes nothing is staged
    assert os.listdir(tmp_path) == []  # the staged files are gone
    staged_acc, broadcast_acc = _accuracy(staged, test), _accuracy(broadcast, test)
    assert staged_acc >= 0.93
    assert abs(staged_acc - broadcast_acc) <= 0.03
    assert len(staged.history["epochs"]["loss"]) == FAST["epochs"]


def test_staged_validation_split_and_the_default_temporary_folder(digits, staging_log):
    train, _ = digits
    model = TFClassifier(**FAST, maxBroadcastBytes=0, validationSplit=0.2).fit(train)
    (folder,) = staging_log()  # a temporary folder: the master is local
    assert not os.path.exists(folder)
    history = model.history["epochs"]
    assert len(history["val_accuracy"]) == FAST["epochs"]
    assert history["val_accuracy"][-1] >= 0.9


def test_staged_rows_sorted_by_label_are_mixed_for_training(spark, digits, tmp_path):
    """Staging deals the rows into files in a random order: sorted input still trains."""
    train, test = digits
    ordered = train.orderBy("label").coalesce(1)
    model = TFClassifier(**FAST, maxBroadcastBytes=0, stagingDir=str(tmp_path)).fit(ordered)
    assert _accuracy(model, test) >= 0.9


def test_staged_files_are_removed_when_every_trial_fails(digits, tmp_path):
    train, _ = digits
    clf = TFClassifier(**FAST, maxBroadcastBytes=0, stagingDir=str(tmp_path))
    with pytest.raises(TrainingError, match="must output 10 scores"):
        clf.setKerasModel(_three_outputs()).fit(train)
    assert os.listdir(tmp_path) == []


def _three_outputs() -> str:
    import keras

    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(3)]).to_json()


class _Conf:
    def __init__(self, values):
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)


class _Session:
    def __init__(self, values):
        self.conf = _Conf(values)


def test_staging_dir_on_a_cluster_must_be_named():
    cluster = _Session({"spark.master": "spark://head:7077"})
    with pytest.raises(
        ValueError, match=r"no staging folder is set for the master 'spark://head:7077'.*stagingDir"
    ):
        resolve_staging_dir(cluster, "TFClassifier", "")
    assert resolve_staging_dir(cluster, "TFClassifier", "hdfs:///tmp/s") == ("hdfs:///tmp/s", False)
    named = _Session({"spark.master": "yarn", "spark.sparktf.stagingDir": "s3a://b/stage"})
    assert resolve_staging_dir(named, "TFClassifier", "") == ("s3a://b/stage", False)
    local, temporary = resolve_staging_dir(_Session({"spark.master": "local[2]"}), "X", "")
    assert temporary and os.path.isdir(local)
    os.rmdir(local)


@pytest.mark.parametrize("staged", [False, True], ids=["broadcast", "staged"])
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([([1.0, None], 0.0), ([0.0, 1.0], 1.0)], r"must hold finite numbers. Got 1 row\(s\)"),
        (
            [([1.0, 2.0], 0.0), ([0.0, 1.0], None)],
            r"'label' \(labelCol\) .* must not contain nulls",
        ),
        ([([1.0, 2.0], 0.0), ([0.0, 1.0], 1.5)], r"integer class indices 0\.\.K-1\. Got 1\.5"),
        ([([1.0, 2.0], 1.0), ([0.0, 1.0], 1.0)], r"at least 2 classes .* single class: 1"),
        ([([1.0, 2.0], 0.0), (None, 1.0)], r"must not contain nulls. Got 1 null row\(s\) of 2"),
    ],
    ids=["nan-feature", "null-label", "fractional-label", "one-class", "null-vector"],
)
def test_bad_data_gets_the_same_error_broadcast_or_staged(spark, tmp_path, staged, rows, message):
    df = spark.createDataFrame(rows, "features array<double>, label double")
    extra = {"maxBroadcastBytes": 0, "stagingDir": str(tmp_path)} if staged else {}
    with pytest.raises(ValueError, match=message):
        TFClassifier(**extra).fit(df)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        ([0.0, 1.0, float("nan")], r"1 NaN or infinite label\(s\): nan\."),
        ([0.0, float("inf"), 1.0], r"1 NaN or infinite label\(s\): inf\."),
        ([float("-inf"), 1.0, float("nan")], r"2 NaN or infinite label\(s\): -inf, nan\."),
    ],
    ids=["nan", "inf", "both"],
)
def test_nan_and_infinite_labels_are_refused_by_name_before_training(spark, labels, shown):
    # Spark SQL orders NaN above every number and takes NaN = NaN: such labels used to pass the
    # label check and fail later (or set K from an infinite maximum).
    rows = [([float(i), 1.0], label) for i, label in enumerate(labels)]
    df = spark.createDataFrame(rows, "features array<double>, target double")
    message = r"Column 'target' \(labelCol\) of TFClassifier must hold finite integer class "
    with pytest.raises(ValueError, match=message + r"indices 0\.\.K-1\. Got " + shown):
        TFClassifier(labelCol="target", **FAST).fit(df)
