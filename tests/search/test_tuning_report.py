"""sparktf.tuning.tuning_report on validator models made by hand: columns, ranking, the trials
it reads from the refit (or the sub-models), pipelines, TrainValidationSplit, refusals."""

from __future__ import annotations

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import StandardScaler
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplitModel
from tuning_support import _cv_model, _refit, _run

from sparktf import TFClassifier
from sparktf.classification import TFClassificationModel
from sparktf.tuning import tuning_report


@pytest.fixture
def clf():
    return TFClassifier()


def test_report_ranks_by_metric_direction_and_reads_the_trials_of_the_refit(spark):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.learningRate, [0.001, 0.01, 0.1]).build()
    other = ParamGridBuilder().addGrid(clf.learningRate, [0.5, 0.6, 0.7]).build()
    best = _refit(
        clf,
        *_run(other, [9.0, 9.0, 9.0]),  # a fitMultiple call of other maps: not this search's
        *_run(maps, [1.0, 2.0, 3.0]),  # fold 1
        *_run(maps, [3.0, 4.0, 5.0], errors=[None, None, "training loss became nan"]),
    )
    evaluator = MulticlassClassificationEvaluator(metricName="logLoss")
    report = tuning_report(
        _cv_model(clf, maps, [0.9, 0.4, 0.0], stds=[0.1, 0.05, 0.0], evaluator=evaluator, best=best)
    )
    assert list(report.columns) == [
        "learningRate",
        "metric",
        "mean",
        "std",
        "seconds",
        "failure",
        "rank",
        "best",
    ]
    assert report["learningRate"].tolist() == [0.001, 0.01, 0.1]
    assert report["metric"].tolist() == ["logLoss"] * 3
    assert report["std"].tolist() == [0.1, 0.05, 0.0]
    assert report["seconds"].tolist() == [2.0, 3.0, 4.0]  # mean over the two folds
    assert report["failure"].tolist() == ["", "", "training loss became nan"]
    # smaller is better for logLoss; the failed map never ranks first even with the best metric
    assert report["rank"].tolist() == [2, 1, 3]
    # "best" is what the validator chose: pyspark's argmin, here the failed map
    assert report["best"].tolist() == [False, False, True]
    assert report.attrs["isLargerBetter"] is False


def test_report_without_trials_or_of_another_estimator(spark):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.hiddenLayers, [[8], [16, 8]]).build()
    evaluator = MulticlassClassificationEvaluator(metricName="f1")
    report = tuning_report(_cv_model(None, maps, [0.7, 0.8], evaluator=evaluator))
    assert report["hiddenLayers"].tolist() == [[8], [16, 8]]
    assert report["seconds"].isna().all()
    assert report["failure"].tolist() == ["", ""]
    assert report["std"].isna().all()  # the model has no stdMetrics
    assert report["rank"].tolist() == [2, 1]
    assert report["best"].tolist() == [False, True]
    # the trials the refit keeps; naming another estimator reads none of them
    best = _refit(clf, *_run(maps, [1.5, 2.5]), *_run(maps, [2.5, 3.5]))
    searched = _cv_model(None, maps, [0.7, 0.8], evaluator=evaluator, best=best)
    assert tuning_report(searched)["seconds"].tolist() == [2.0, 3.0]
    assert tuning_report(searched, estimator=clf)["seconds"].tolist() == [2.0, 3.0]
    assert tuning_report(searched, estimator=TFClassifier())["seconds"].isna().all()


def test_report_finds_the_classifier_inside_a_pipeline(spark):
    from pyspark.ml import PipelineModel

    scaler = StandardScaler(inputCol="raw", outputCol="features")
    clf = TFClassifier()
    pipeline = Pipeline(stages=[scaler, clf])
    maps = (
        ParamGridBuilder()
        .addGrid(scaler.withMean, [False, True])
        .addGrid(clf.learningRate, [0.01, 0.1])
        .build()
    )
    # A Pipeline fits the classifier one map at a time: each fit knows only the classifier's
    # Params (here also one set by the user), so maps that differ only in the scaler share them.
    own = [{p: v for p, v in m.items() if p.parent == clf.uid} for m in maps]
    user = {clf.hiddenLayers: [16]}
    runs = _run(own, [1.0, 2.0, 3.0, 4.0], grid=False, extra=user) + _run(
        own, [3.0, 4.0, 5.0, 6.0], ["boom", None, None, None], grid=False, extra=user
    )
    best = PipelineModel(stages=[_refit(clf, *runs)])
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    report = tuning_report(
        _cv_model(pipeline, maps, [0.5, 0.9, 0.6, 0.8], evaluator=evaluator, best=best)
    )
    assert report[["withMean", "learningRate"]].values.tolist() == [
        [False, 0.01],
        [False, 0.1],
        [True, 0.01],
        [True, 0.1],
    ]
    assert report["seconds"].tolist() == [3.0, 4.0, 3.0, 4.0]
    assert report["failure"].tolist() == ["boom", "", "boom", ""]
    assert report["rank"].tolist() == [4, 1, 3, 2]
    assert report["best"].tolist() == [False, True, False, False]


def test_report_from_collected_sub_models(spark):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.epochs, [1, 2]).build()

    def sub(seconds, error=None):
        return TFClassificationModel._create(
            None if error else b"weights", 4, 3, True, {"seconds": seconds, "error": error}
        )

    folds = [[sub(1.0), sub(2.0, "ValueError: bad")], [sub(3.0), sub(6.0)]]
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    report = tuning_report(
        _cv_model(clf, maps, [0.2, 0.9], stds=[0.0, 0.1], evaluator=evaluator, sub_models=folds)
    )
    assert report["seconds"].tolist() == [2.0, 4.0]
    assert report["failure"].tolist() == ["", "ValueError: bad"]
    assert report["rank"].tolist() == [1, 2]
    assert report["best"].tolist() == [False, True]


def test_report_for_train_validation_split(spark):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.learningRate, [0.01, 0.1, 1.0]).build()
    model = TrainValidationSplitModel(None, [0.8, float("nan"), 0.9])
    model._set(
        estimator=clf,
        estimatorParamMaps=maps,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
    )
    report = tuning_report(model)
    assert report["std"].isna().all()
    assert report["rank"].tolist() == [2, 3, 1]  # a NaN metric ranks last
    assert report["mean"].iloc[2] == 0.9


def test_report_rejects_other_objects(clf):
    with pytest.raises(
        TypeError,
        match=r"tuning_report expects a fitted CrossValidatorModel or TrainValidationSplitModel\. "
        r"Got TFClassifier instead\.",
    ):
        tuning_report(clf)


def test_report_counts_only_the_newest_runs_of_its_grid(spark):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.learningRate, [0.001, 0.01]).build()
    best = _refit(
        clf,
        *_run(maps, [50.0, 50.0], errors=["an earlier search", "an earlier search"]),
        *_run(maps, [1.0, 2.0]),  # this search's two folds
        *_run(maps, [3.0, 4.0]),
    )
    report = tuning_report(_cv_model(clf, maps, [0.9, 0.8], folds=2, best=best))
    assert report["seconds"].tolist() == [2.0, 3.0]
    assert report["failure"].tolist() == ["", ""]
