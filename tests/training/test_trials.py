"""Trials of a search: each param map's own data Params, failed trials, failed refits, seeds."""

from __future__ import annotations

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import Evaluator, MulticlassClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit
from pyspark.sql import functions as F
from rows import rows_by  # tests/rows.py

from sparktf import TFClassifier
from sparktf.classification import TrainingError, trial_scope

FAST = {"epochs": 3, "batchSize": 128, "learningRate": 0.01, "hiddenLayers": [16]}


def _accuracy():
    return MulticlassClassificationEvaluator(metricName="accuracy")


def _two_feature_columns(df):
    """``f1``: all 64 pixels; ``f2``: the top half of the image (32 pixels); no ``features``."""
    pixels = vector_to_array("features")
    return df.select("image_id", "label", pixels.alias("f1"), F.slice(pixels, 1, 32).alias("f2"))


def _predictions(model, df):
    return [r[1] for r in rows_by(model.transform(df).select("image_id", "prediction"), "image_id")]


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


# -- failed trials and failed refits -----------------------------------------------------------


def _wrong_output_model():
    """A user architecture that fails inside the task (3 outputs for 10 classes)."""
    import keras

    return keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(3)]).to_json()


class _LowAccuracyWins(Evaluator):
    """Accuracy, with smaller taken as better: a validator using it chooses a failed trial."""

    def _evaluate(self, dataset):
        return _accuracy().evaluate(dataset)

    def isLargerBetter(self):
        return False


def test_trial_scope_needs_a_classifier(spark):  # StandardScaler needs a SparkContext
    from pyspark.ml.feature import StandardScaler

    with pytest.raises(ValueError, match="trial_scope expects a TFClassifier"):
        trial_scope(Pipeline(stages=[StandardScaler()]))


@pytest.mark.parametrize("scoped", [False, True])
def test_pipeline_grid_where_every_map_fails_raises(digits, scoped):
    train, _ = digits
    clf = TFClassifier(kerasModel=_wrong_output_model(), **FAST)
    pipeline = Pipeline(stages=[clf])
    cv = CrossValidator(
        estimator=pipeline,
        estimatorParamMaps=ParamGridBuilder().addGrid(clf.epochs, [1, 2]).build(),
        evaluator=_accuracy(),
        numFolds=2,
    )
    if scoped:
        message = r"All 5 fits of TFClassifier .* in this trial scope failed; none can be chosen"
        with pytest.raises(TrainingError, match=message), trial_scope(pipeline):
            cv.fit(train)
    else:
        message = r"TFClassifier training failed: .*must output 10 scores.*trial_scope"
        with pytest.raises(TrainingError, match=message):
            cv.fit(train)


@pytest.mark.parametrize("in_pipeline", [False, True])
def test_a_failed_refit_of_the_chosen_map_raises(digits, in_pipeline):
    train, _ = digits
    clf = TFClassifier(**FAST)
    estimator = Pipeline(stages=[clf]) if in_pipeline else clf
    tvs = TrainValidationSplit(
        estimator=estimator,
        estimatorParamMaps=[{clf.kerasModel: _wrong_output_model()}, {clf.epochs: 2}],
        evaluator=_LowAccuracyWins(),
        seed=4,
    )
    if in_pipeline:
        message = r"The last fit of TFClassifier .* \(a validator's refit of the chosen param map"
        with pytest.raises(TrainingError, match=message), trial_scope(tvs):
            tvs.fit(train)
    else:
        with pytest.raises(TrainingError, match=r"TFClassifier training failed: .*must output 10"):
            tvs.fit(train)


def test_a_plain_fit_that_fails_raises_also_in_a_pipeline(digits):
    train, _ = digits
    clf = TFClassifier(kerasModel=_wrong_output_model(), **FAST)
    with pytest.raises(TrainingError, match=r"TFClassifier training failed: .*must output 10"):
        clf.fit(train)
    with pytest.raises(TrainingError, match=r"TFClassifier training failed: .*must output 10"):
        Pipeline(stages=[clf]).fit(train, {clf.epochs: 1})


def test_a_scope_over_two_classifiers_of_one_uid_ends_for_both(digits):
    """A classifier loaded twice (one uid, two objects) in one Pipeline: when the scope ends,
    neither is left in it, so a failed fit of either raises again."""
    import copy

    train, _ = digits
    clf = TFClassifier(kerasModel=_wrong_output_model(), **FAST)
    twin = copy.deepcopy(clf)
    assert twin.uid == clf.uid
    with trial_scope(Pipeline(stages=[clf, twin])):
        pass
    for stage in (clf, twin):
        with pytest.raises(TrainingError, match=r"TFClassifier training failed: .*must output"):
            stage.fit(train)


def test_a_diverging_trial_is_marked_and_never_chosen(digits):
    train, test = digits
    clf = TFClassifier(hiddenLayers=[32], epochs=10, batchSize=64)
    diverging = {clf.learningRate: 1e38, clf.optimizer: "sgd", clf.standardization: False}
    tvs = TrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=[diverging, {clf.learningRate: 0.01}],
        evaluator=_accuracy(),
        collectSubModels=True,
        seed=6,
    )
    model = tvs.fit(train)
    failed, trained = model.subModels
    assert not failed.hasModel
    assert failed.trainingFailure.startswith("training loss became")
    assert trained.trainingFailure is None
    assert model.validationMetrics[0] == 0.0
    assert model.bestModel.getLearningRate() == 0.01
    assert _accuracy().evaluate(model.transform(test)) > 0.9
