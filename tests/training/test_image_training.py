"""TFClassifier trained on image columns: encoded bytes, Spark image structs and paths, decoded
by sparktf.image in the task's tf.data pipeline; a folder of labelled images; images staged above
the broadcast limit; and the validators tuning an image column."""

from __future__ import annotations

import pytest
from image_training_support import FAST, _accuracy, _binary, _paths, _structs
from pyspark.ml.evaluation import MulticlassClassificationEvaluator

from sparktf import TFClassifier

pytest_plugins = ("image_training_fixtures",)


@pytest.mark.parametrize(
    "read,column", [(_binary, "content"), (_structs, "image"), (_paths, "file")]
)
def test_each_image_column_kind_trains_and_transforms(spark, image_dir, read, column, request):
    train, test = read(spark, image_dir / "train"), read(spark, image_dir / "test")
    augment = {"augmentFlip": True, "augmentZoom": 0.1} if column == "image" else {}
    if column == "content":  # this very fit is the session's bytes_model: fitted once
        model = request.getfixturevalue("bytes_model")
    else:
        model = TFClassifier(featuresCol=column, **FAST, **augment).fit(train)
    assert model._image["kind"] in ("image_bytes", "image_struct", "image_path")
    assert model.numFeatures == 16 * 16 * 3
    assert _accuracy(model, test) >= 0.9  # chance is 1/3


def test_a_halving_search_tunes_an_image_column_and_refuses_one_above_the_limit(spark, image_dir):
    from sparktf.search import HalvingTrainValidationSplit

    clf = TFClassifier(featuresCol="content", **FAST)
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=[{clf.learningRate: 0.02}, {clf.learningRate: 1e-6}],
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        trainRatio=0.75,
        seed=1,
    )
    train, test = _binary(spark, image_dir / "train"), _binary(spark, image_dir / "test")
    fitted = search.fit(train)
    # the in-task metric is the held-out images' accuracy: the map that learns wins
    assert fitted.validationMetrics[0] > fitted.validationMetrics[1]
    assert fitted.bestModel.getOrDefault("learningRate") == 0.02
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    assert evaluator.evaluate(fitted.bestModel.transform(test)) >= 0.9
    small = search.copy().setEstimator(clf.copy({clf.maxBroadcastBytes: 100}))
    with pytest.raises(
        ValueError, match=r"HalvingTrainValidationSplit needs training data that fits"
    ):
        small.fit(train)


def test_a_folder_of_labelled_images_trains_from_its_paths(spark, image_dir, tmp_path):
    from sparktf.datasets import load_image_folder

    for label in range(3):
        folder = tmp_path / f"c{label}"  # sorted folder order = the class index
        folder.mkdir()
        for file in (image_dir / "train").glob(f"c{label}_*.png"):
            (folder / file.name).write_bytes(file.read_bytes())
    photos = load_image_folder(spark, str(tmp_path))
    model = TFClassifier(featuresCol="path", **FAST).fit(photos)
    test = _paths(spark, image_dir / "test").withColumnRenamed("file", "path")
    assert _accuracy(model, test) >= 0.9


@pytest.mark.parametrize("read,column", [(_binary, "content"), (_structs, "image")])
def test_images_above_the_broadcast_limit_are_staged_and_streamed(
    spark, image_dir, read, column, caplog
):
    import logging

    caplog.set_level(logging.INFO, logger="sparktf")
    train, test = read(spark, image_dir / "train"), read(spark, image_dir / "test")
    clf = TFClassifier(featuresCol=column, maxBroadcastBytes=0, validationSplit=0.2, **FAST)
    model = clf.fit(train)
    assert any(" staging 72 rows" in r.getMessage() for r in caplog.records)
    assert "val_loss" in model.history["epochs"]
    assert _accuracy(model, test) >= 0.9


def test_train_validation_split_tunes_an_image_column(spark, image_dir):
    from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit

    clf = TFClassifier(featuresCol="content", **{**FAST, "epochs": 1})
    grid = ParamGridBuilder().addGrid(clf.imageScaling, ["unit", "standardize"]).build()
    tvs = TrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        trainRatio=0.75,
        seed=1,
    )
    model = tvs.fit(_binary(spark, image_dir / "train"))
    assert len(model.validationMetrics) == 2
    assert all(m is not None and m > 1 / 3 for m in model.validationMetrics)
    assert model.bestModel._image["size"] == [16, 16]
