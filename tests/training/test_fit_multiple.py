"""Distributed tuning: fitMultiple trains a grid as one Spark job; validators use it unchanged."""

from __future__ import annotations

import itertools
import os
import threading

import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import (
    CrossValidator,
    CrossValidatorModel,
    ParamGridBuilder,
    TrainValidationSplit,
    TrainValidationSplitModel,
)
from rows import rows_by  # tests/rows.py

from sparktf import TFClassificationModel, TFClassifier
from sparktf.classification import TrainingError, TrialFailedError, trial_scope

FAST = {"epochs": 3, "batchSize": 128, "learningRate": 0.01}


def _accuracy():
    return MulticlassClassificationEvaluator(metricName="accuracy")


def _wrong_output_model():
    """A user architecture that fails inside the task (3 outputs for 10 classes)."""
    import keras

    return keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(3)]).to_json()


def test_fit_multiple_trains_every_map_in_one_parallel_job(spark, digits):
    train, _ = digits
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.hiddenLayers, [[8], [16], [32], [24]]).build()
    models = dict(clf.fitMultiple(train, grid))
    assert sorted(models) == [0, 1, 2, 3]
    for index, model in models.items():
        assert model.getHiddenLayers() == grid[index][clf.hiddenLayers]
        first = model.keras_model().get_layer("dense0")
        assert first.units == grid[index][clf.hiddenLayers][0]
    workers = [m.history["worker"] for m in models.values()]
    groups = {w["jobGroup"] for w in workers}
    assert len(groups) == 1
    (group,) = groups
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup(group)) == 1
    assert all(w["pid"] != os.getpid() for w in workers)
    # local[2]: two tasks train at the same time.
    spans = sorted((w["started"], w["finished"]) for w in workers)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans


def test_fit_multiple_iterator_is_thread_safe(digits):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], **FAST)
    grid = ParamGridBuilder().addGrid(clf.learningRate, [0.01, 0.02, 0.03]).build()
    iterator = clf.fitMultiple(train, grid)
    got, lock = [], threading.Lock()

    def consume():
        for index, model in iterator:
            with lock:
                got.append((index, model.getLearningRate()))

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == [(0, 0.01), (1, 0.02), (2, 0.03)]
    with pytest.raises(StopIteration):
        next(iterator)


def test_failed_job_is_not_rerun_by_later_next_calls(spark):
    broken = spark.createDataFrame(
        [([1.0, 2.0], 0.0), (None, 1.0)], "features array<double>, label double"
    )
    clf = TFClassifier(**FAST)
    iterator = clf.fitMultiple(broken, [{clf.epochs: 1}, {clf.epochs: 2}])
    with pytest.raises(ValueError, match="must not contain nulls") as first:
        next(iterator)
    with pytest.raises(ValueError) as second:
        next(iterator)
    assert second.value is first.value


def test_bad_param_value_in_grid_raises_before_any_job(spark, digits):
    train, _ = digits
    clf = TFClassifier(**FAST)
    sc = spark.sparkContext
    sc.setJobGroup("bad-grid", "bad grid")
    try:
        with pytest.raises(ValueError, match=r"'batchSize' param of TFClassifier .* Got 0"):
            clf.fitMultiple(train, [{clf.batchSize: 16}, {clf.batchSize: 0}])
        assert sc.statusTracker().getJobIdsForGroup("bad-grid") == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_cross_validator_picks_best_and_refits_on_executor(digits, parallelism):
    train, test = digits
    clf = TFClassifier(hiddenLayers=[16], **FAST)
    grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-5, 0.02]).build()
    cv = CrossValidator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=_accuracy(),
        numFolds=2,
        parallelism=parallelism,
        seed=1,
    )
    cv_model = cv.fit(train)
    assert len(cv_model.avgMetrics) == 2
    assert cv_model.avgMetrics[1] > cv_model.avgMetrics[0]
    best = cv_model.bestModel
    assert isinstance(best, TFClassificationModel)
    assert best.getLearningRate() == 0.02
    assert best.history["worker"]["pid"] != os.getpid()
    assert _accuracy().evaluate(cv_model.transform(test)) > 0.85


def test_train_validation_split_with_sub_models(digits):
    train, _ = digits
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.hiddenLayers, [[4], [32]]).build()
    tvs = TrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=_accuracy(),
        trainRatio=0.75,
        collectSubModels=True,
        parallelism=2,
        seed=3,
    )
    model = tvs.fit(train)
    assert [m.getHiddenLayers() for m in model.subModels] == [[4], [32]]
    assert len(model.validationMetrics) == 2


def test_failed_trials_never_win_whatever_the_metric_direction(digits):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], **FAST)
    grid = [
        {clf.kerasModel: _wrong_output_model()},  # raises inside the task
        {clf.learningRate: 1e38, clf.optimizer: "sgd", clf.standardization: False},  # NaN loss
        {clf.learningRate: 0.01},
    ]
    for metric in ("accuracy", "f1", "logLoss"):
        evaluator = MulticlassClassificationEvaluator(metricName=metric)
        cv = CrossValidator(
            estimator=clf,
            estimatorParamMaps=grid,
            evaluator=evaluator,
            numFolds=2,
            collectSubModels=True,
            seed=2,
        )
        cv_model = cv.fit(train)
        assert cv_model.bestModel.trainingFailure is None, metric
        assert cv_model.bestModel.getLearningRate() == 0.01
        failed = cv_model.subModels[0][:2]
        assert "must output 10 scores" in failed[0].trainingFailure
        assert (
            "loss became nan" in failed[1].trainingFailure
            or "loss became inf" in failed[1].trainingFailure
        )
        worst = min if evaluator.isLargerBetter() else max
        assert worst(cv_model.avgMetrics) == cv_model.avgMetrics[0], (metric, cv_model.avgMetrics)
        if metric == "accuracy":
            assert cv_model.avgMetrics[:2] == [0.0, 0.0]


def test_failed_trial_model_scores_worst_and_refuses_unlabelled_data(digits):
    train, test = digits
    clf = TFClassifier(**FAST)
    models = dict(clf.fitMultiple(train, [{clf.kerasModel: _wrong_output_model()}, {}]))
    failed = models[0]
    assert not failed.hasModel and "must output 10 scores" in failed.trainingFailure
    assert _accuracy().evaluate(failed.transform(test)) == 0.0
    with pytest.raises(TrainingError, match="holds no trained network: its training failed"):
        failed.transform(test.drop("label"))
    assert models[1].hasModel


def test_all_trials_failing_gives_a_clear_error(digits):
    train, _ = digits
    clf = TFClassifier(kerasModel=_wrong_output_model(), **FAST)
    cv = CrossValidator(
        estimator=clf,
        estimatorParamMaps=ParamGridBuilder().addGrid(clf.epochs, [1, 2]).build(),
        evaluator=_accuracy(),
        numFolds=2,
    )
    with pytest.raises(TrainingError, match=r"All 2 trials of TFClassifier failed; none can be"):
        cv.fit(train)


def test_strict_mode_raises_on_first_failure(digits):
    train, _ = digits
    clf = TFClassifier(failOnTrialError=True, **FAST)
    grid = [{clf.kerasModel: _wrong_output_model()}, {clf.hiddenLayers: [8]}]
    with pytest.raises(TrialFailedError, match=r"failOnTrialError=True.*must output 10 scores"):
        next(clf.fitMultiple(train, grid))


def test_grid_inside_a_pipeline_survives_a_failed_trial(digits):
    from pyspark.ml.feature import StandardScaler

    from sparktf.tuning import tuning_report

    train, _ = digits
    shifted = train.withColumnRenamed("features", "pixels")
    scaler = StandardScaler(inputCol="pixels", outputCol="features")
    clf = TFClassifier(hiddenLayers=[16], standardization=False, optimizer="sgd", **FAST)
    pipeline = Pipeline(stages=[scaler, clf])
    grid = ParamGridBuilder().addGrid(clf.learningRate, [1e38, 0.05]).build()
    cv = CrossValidator(
        estimator=pipeline,
        estimatorParamMaps=grid,
        evaluator=_accuracy(),
        numFolds=2,
        parallelism=2,
    )
    with trial_scope(pipeline):
        model = cv.fit(shifted)
    assert model.bestModel.stages[-1].getLearningRate() == 0.05
    assert model.bestModel.stages[-1].hasModel
    assert model.avgMetrics[0] == 0.0
    report = tuning_report(model)
    assert report["failure"].iloc[0].startswith("training loss became")
    assert report["failure"].iloc[1] == ""
    assert list(report["rank"]) == [2, 1]
    # Outside a trial scope, a plain fit that fails raises.
    with pytest.raises(TrainingError, match="TFClassifier training failed: training loss became"):
        pipeline.fit(shifted, {clf.learningRate: 1e38})


@pytest.mark.parametrize("sub_models", [False, True])
def test_cross_validator_model_save_load(digits, tmp_path, sub_models):
    from sparktf.persistence import load_cross_validator_model

    train, test = digits
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.hiddenLayers, [[4], [16]]).build()
    cv_model = CrossValidator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=_accuracy(),
        numFolds=2,
        collectSubModels=sub_models,
        seed=5,
    ).fit(train)
    path = str(tmp_path / "cv")
    cv_model.write().option("persistSubModels", str(sub_models).lower()).save(path)
    loaded = load_cross_validator_model(path)
    assert isinstance(loaded.bestModel, TFClassificationModel)
    assert loaded.avgMetrics == cv_model.avgMetrics

    def probabilities(model):
        rows = rows_by(model.transform(test).select("image_id", "probability"), "image_id")
        return np.array([r[1].toArray() for r in rows])

    np.testing.assert_array_equal(probabilities(cv_model), probabilities(loaded))
    if sub_models:
        # Each fold keeps its own models (pyspark's reader alone aliases all folds to the last).
        assert loaded.subModels[0] is not loaded.subModels[1]
        for fold in range(2):
            for j in range(2):
                assert (
                    loaded.subModels[fold][j].modelBytes == cv_model.subModels[fold][j].modelBytes
                )
        plain = CrossValidatorModel.load(path)
        assert plain.subModels[0] is plain.subModels[1]  # the upstream behaviour we work around
    else:
        assert loaded.subModels is None


def test_train_validation_split_model_save_load(digits, tmp_path):
    train, test = digits
    clf = TFClassifier(**FAST)
    grid = ParamGridBuilder().addGrid(clf.hiddenLayers, [[4], [16]]).build()
    model = TrainValidationSplit(
        estimator=clf, estimatorParamMaps=grid, evaluator=_accuracy(), collectSubModels=True
    ).fit(train)
    path = str(tmp_path / "tvs")
    model.write().option("persistSubModels", "true").save(path)
    loaded = TrainValidationSplitModel.load(path)
    assert loaded.validationMetrics == model.validationMetrics
    assert [m.getHiddenLayers() for m in loaded.subModels] == [[4], [16]]
    before = model.transform(test).select("prediction").collect()
    assert before == loaded.transform(test).select("prediction").collect()


def test_cross_validator_reaches_098_on_digits(digits):
    """Tuning hiddenLayers x learningRate picks a model with test accuracy >= 0.98."""
    train, test = digits
    clf = TFClassifier(epochs=40, batchSize=32, dropout=0.2)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[64], [256, 128]])
        .addGrid(clf.learningRate, [1e-3, 3e-3])
        .build()
    )
    # Two folds choose the same map as three ([256, 128] at 1e-3), whose refit on all of train
    # is what the test scores.
    cv = CrossValidator(
        estimator=clf, estimatorParamMaps=grid, evaluator=_accuracy(), numFolds=2, seed=11
    )
    model = cv.fit(train)
    accuracy = _accuracy().evaluate(model.transform(test))
    assert accuracy >= 0.98, (accuracy, model.avgMetrics)
    assert model.bestModel.history["worker"]["pid"] != os.getpid()


def test_progress_is_logged_while_a_grid_trains(digits, caplog):
    import logging

    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], **FAST)
    grid = ParamGridBuilder().addGrid(clf.learningRate, [0.01, 0.02]).build()
    with caplog.at_level(logging.INFO, logger="sparktf.tuning"):
        list(clf.fitMultiple(train, grid))
    lines = [r.getMessage() for r in caplog.records if r.name == "sparktf.tuning"]
    name = f"{clf.uid} fitMultiple"
    assert f"{name}: 2/2 models trained" in "\n".join(lines), lines
    trials = [line for line in lines if "train accuracy" in line]
    # each trial once, named by the Param that varies, its metrics named as training ones
    assert len(trials) == 2, lines
    for line, rate in zip(trials, ("0.01", "0.02"), strict=True):
        assert line.startswith(f"{name}: learningRate={rate}: train accuracy 0."), line
        assert ", train loss " in line and "hiddenLayers" not in line


def test_trial_lines_name_folds_and_the_refit(digits, caplog):
    """In a named search the k-th fitMultiple is fold k of n, the single fit the refit."""
    import logging

    from pyspark.ml.tuning import CrossValidator

    from sparktf.training._trials import named_rounds

    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], **FAST)
    grid = ParamGridBuilder().addGrid(clf.learningRate, [0.01, 0.02]).build()
    cv = CrossValidator(
        estimator=clf, estimatorParamMaps=grid, evaluator=_accuracy(), numFolds=2, seed=3
    )
    with caplog.at_level(logging.INFO, logger="sparktf.tuning"), named_rounds(clf, 2):
        cv.fit(train.limit(300))
    lines = [r.getMessage() for r in caplog.records if r.name == "sparktf.tuning"]
    trials = [line for line in lines if "train accuracy" in line]
    assert [line.split(":")[0] for line in trials] == [
        "fold 1 of 2",
        "fold 1 of 2",
        "fold 2 of 2",
        "fold 2 of 2",
        "refit of the best setting",
    ], lines
    assert not any("#0" in line or clf.uid in line for line in lines)


def test_a_trial_line_names_train_and_val_metrics():
    from sparktf.training._distributed import _describe

    line = _describe(
        {"label": "lr=0.1", "accuracy": 0.99, "val_accuracy": 0.96, "loss": 0.1, "seconds": 2.0}
    )
    assert line == "lr=0.1: val accuracy 0.9600, train accuracy 0.9900, train loss 0.1000 (2.0s)"


def test_progress_bar_on_a_terminal(caplog):
    import io
    import logging

    from sparktf.training._distributed import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with caplog.at_level(logging.INFO, logger="sparktf.tuning"):
        progress = _Progress(4, "search", stream=screen)
        progress.update(1)
        progress.update(4)
        progress.close()
    text = screen.getvalue()
    assert "search [######..................] 1/4 models trained" in text
    assert "[########################] 4/4 models trained" in text and text.endswith("\n")
    assert not caplog.records  # on a terminal the bar alone, not log lines over it too
