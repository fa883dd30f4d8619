"""sparktf.tuning: random search builder, tuning report and sensitivity plot."""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import StandardScaler
from pyspark.ml.tuning import (
    CrossValidator,
    CrossValidatorModel,
    ParamGridBuilder,
    TrainValidationSplitModel,
)

from sparktf import TFClassifier
from sparktf._sensitivity import value_label as _label
from sparktf.classification import TFClassificationModel
from sparktf.errors import TrainingError
from sparktf.training._book import TrialRun
from sparktf.tuning import ParamRandomBuilder, plot_sensitivity, tuning_report

# -- ParamRandomBuilder ----------------------------------------------------------------------------


@pytest.fixture
def clf():
    return TFClassifier()


def test_tuning_module_does_not_import_tensorflow_or_matplotlib():
    import subprocess

    code = (
        "import sys, sparktf.tuning; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_is_reproducible_and_depends_on_seed(clf):
    builder = (
        ParamRandomBuilder()
        .addLogUniform(clf.learningRate, 1e-4, 1e-1)
        .addUniform(clf.dropout, 0.0, 0.5)
        .addUniform(clf.epochs, 2, 40)
        .addChoice(clf.optimizer, ["adam", "sgd", "rmsprop"])
    )
    first = builder.build(8, seed=11)
    assert len(first) == 8
    assert builder.build(8, seed=11) == first
    other = builder.build(8, seed=12)
    assert other != first
    assert [m[clf.learningRate] for m in other] != [m[clf.learningRate] for m in first]
    # more points with the same seed extend the sample instead of replacing it
    assert builder.build(12, seed=11)[:8] == first
    # a fresh seed each call when none is given
    assert builder.build(8) != builder.build(8)


def test_uniform_float_and_int_ranges(clf):
    maps = (
        ParamRandomBuilder()
        .addUniform(clf.dropout, 0.1, 0.3)
        .addUniform(clf.epochs, 3, 6)
        .build(400, seed=1)
    )
    assert all(type(m[clf.dropout]) is float for m in maps)
    dropout = np.array([m[clf.dropout] for m in maps])
    epochs = [m[clf.epochs] for m in maps]
    assert dropout.min() >= 0.1 and dropout.max() < 0.3
    assert dropout.min() < 0.11 and dropout.max() > 0.29  # the whole range is covered
    assert all(type(v) is int for v in epochs)
    assert sorted(set(epochs)) == [3, 4, 5, 6]  # ints: both ends included


def test_float_param_with_int_bounds_gets_floats(clf):
    maps = ParamRandomBuilder().addUniform(clf.learningRate, 1, 2).build(5, seed=0)
    assert all(type(m[clf.learningRate]) is float for m in maps)
    assert all(1.0 <= m[clf.learningRate] < 2.0 for m in maps)


def test_log_uniform_spreads_evenly_over_decades(clf):
    n = 3000
    rates = np.array(
        [
            m[clf.learningRate]
            for m in ParamRandomBuilder()
            .addLogUniform(clf.learningRate, 1e-4, 1e-1)
            .build(n, seed=5)
        ]
    )
    assert rates.min() >= 1e-4 and rates.max() < 1e-1
    per_decade = np.histogram(np.log10(rates), bins=[-4, -3, -2, -1])[0] / n
    np.testing.assert_allclose(per_decade, [1 / 3] * 3, atol=0.04)
    # a plain uniform draw over the same range puts ~90% of the points in the top decade
    uniform = np.array(
        [
            m[clf.learningRate]
            for m in ParamRandomBuilder().addUniform(clf.learningRate, 1e-4, 1e-1).build(n, seed=5)
        ]
    )
    assert (uniform >= 1e-2).mean() > 0.85


def test_log_uniform_ints(clf):
    sizes = [
        m[clf.batchSize]
        for m in ParamRandomBuilder().addLogUniform(clf.batchSize, 8, 512).build(2000, seed=3)
    ]
    assert all(type(v) is int for v in sizes)
    assert min(sizes) == 8 and max(sizes) == 512
    # log-uniform: as many values below the geometric mean (64) as above it
    below = sum(v < 64 for v in sizes) / len(sizes)
    assert 0.44 < below < 0.56


def test_choice_values_and_list_params(clf):
    choices = [[16], [32, 16], [64, 32, 16]]
    maps = ParamRandomBuilder().addChoice(clf.hiddenLayers, choices).build(300, seed=2)
    got = [m[clf.hiddenLayers] for m in maps]
    assert all(type(v) is list for v in got)
    counts = {str(c): sum(v == c for v in got) for c in choices}
    assert set(counts) == {str(c) for c in choices}
    assert all(70 < c < 130 for c in counts.values()), counts
    got[0].append(99)  # maps never share list objects
    assert all(99 not in v for v in got[1:])


def test_grid_axes_cross_the_same_samples(clf):
    maps = (
        ParamRandomBuilder()
        .addLogUniform(clf.learningRate, 1e-3, 1e-1)
        .addGrid(clf.hiddenLayers, [[8], [16, 8]])
        .addGrid(clf.optimizer, ["adam", "sgd"])
        .baseOn({clf.epochs: 3})
        .build(3, seed=9)
    )
    assert len(maps) == 3 * 2 * 2
    combos = {(tuple(m[clf.hiddenLayers]), m[clf.optimizer]) for m in maps}
    assert combos == {((8,), "adam"), ((8,), "sgd"), ((16, 8), "adam"), ((16, 8), "sgd")}
    rates_per_combo = {}
    for m in maps:
        key = (tuple(m[clf.hiddenLayers]), m[clf.optimizer])
        rates_per_combo.setdefault(key, []).append(m[clf.learningRate])
    rates = list(rates_per_combo.values())
    assert all(r == rates[0] for r in rates) and len(set(rates[0])) == 3
    assert all(m[clf.epochs] == 3 for m in maps)


def test_maps_work_with_a_validator(clf):
    maps = ParamRandomBuilder().addUniform(clf.batchSize, 16, 64).build(4, seed=0)
    cv = CrossValidator(estimator=clf, estimatorParamMaps=maps)
    assert cv.getEstimatorParamMaps() == maps
    # the maps apply to copies of the estimator like grid maps do
    assert [clf.copy(m).getBatchSize() for m in maps] == [m[clf.batchSize] for m in maps]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda b, c: b.addUniform(c.dropout, 0.5, 0.5),
            ValueError,
            r"ParamRandomBuilder.addUniform: the range of the 'dropout' param must have "
            r"low < high. Got low=0.5, high=0.5 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.epochs, 10, 2),
            ValueError,
            r"the range of the 'epochs' param must have low < high. Got low=10, high=2 instead.",
        ),
        (
            lambda b, c: b.addLogUniform(c.learningRate, 0.0, 0.1),
            ValueError,
            r"ParamRandomBuilder.addLogUniform: a log-uniform range needs low > 0, but the "
            r"'learningRate' param got low=0.0, high=0.1.",
        ),
        (
            lambda b, c: b.addLogUniform(c.learningRate, -1e-3, 0.1),
            ValueError,
            r"a log-uniform range needs low > 0, but the 'learningRate' param got low=-0.001",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, 0.0, math.inf),
            ValueError,
            r"the bounds of the 'dropout' param must be finite. Got low=0.0, high=inf instead.",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, "0", 1),
            TypeError,
            r"the bounds of the 'dropout' param must be numbers. Got low='0', high=1 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.epochs, 1.5, 10),
            ValueError,
            r"the 'epochs' param takes ints, so its bounds must be whole numbers. "
            r"Got low=1.5, high=10 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.hiddenLayers, 1, 10),
            TypeError,
            r"ParamRandomBuilder.addUniform: the 'hiddenLayers' param does not take numbers "
            r"\(Could not convert 1.0 to list of ints\); use addChoice or addGrid for it.",
        ),
        (
            lambda b, c: b.addChoice(c.optimizer, []),
            ValueError,
            r"ParamRandomBuilder.addChoice: the 'optimizer' param needs at least one value. "
            r"Got an empty list.",
        ),
        (
            lambda b, c: b.addChoice(c.optimizer, "adam"),
            TypeError,
            r"the values of the 'optimizer' param must be a list. Got str instead.",
        ),
        (
            lambda b, c: b.addChoice(c.hiddenLayers, [[16], "wide"]),
            TypeError,
            r"ParamRandomBuilder.addChoice: 'wide' is not a valid value for the 'hiddenLayers'",
        ),
        (
            lambda b, c: b.addGrid(c.epochs, []),
            ValueError,
            r"ParamRandomBuilder.addGrid: the 'epochs' param needs at least one value",
        ),
        (
            lambda b, c: b.addUniform("learningRate", 0.1, 1.0),
            TypeError,
            r"ParamRandomBuilder.addUniform expects a Param \(e.g. clf.learningRate\). "
            r"Got str instead.",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, 0.0, 0.5).addGrid(c.dropout, [0.1]),
            ValueError,
            r"ParamRandomBuilder.addGrid: the 'dropout' param is already in this builder",
        ),
    ],
)
def test_builder_errors_name_the_param(clf, call, error, message):
    with pytest.raises(error, match=message):
        call(ParamRandomBuilder(), clf)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_build_needs_n_of_at_least_one(clf, n):
    builder = ParamRandomBuilder().addUniform(clf.dropout, 0.0, 0.5)
    with pytest.raises(
        ValueError, match=rf"ParamRandomBuilder.build: n must be an int >= 1. Got {n!r} instead."
    ):
        builder.build(n, seed=0)


def test_build_needs_a_random_axis(clf):
    builder = ParamRandomBuilder().addGrid(clf.epochs, [1, 2])
    with pytest.raises(ValueError, match="no random axis was added"):
        builder.build(3, seed=0)


# -- tuning_report on hand-made validator models ------------------------------------------------


def _cv_model(
    estimator, maps, metrics, stds=None, evaluator=None, folds=2, sub_models=None, best=None
):
    model = CrossValidatorModel(best, list(metrics), sub_models, stds)
    model._set(estimatorParamMaps=maps, numFolds=folds)
    if estimator is not None:
        model._set(estimator=estimator)
    if evaluator is not None:
        model._set(evaluator=evaluator)
    return model


def _run(maps, seconds, errors=None, grid=True, extra=None):
    """Trials as a TFClassifier writes them: one fitMultiple call (grid), or single fits."""
    errors = errors or [None] * len(maps)
    results = [
        {"seconds": s, "error": e, "history": {"loss": [1.0, 0.5]}}
        for s, e in zip(seconds, errors, strict=True)
    ]
    if grid:
        return [TrialRun.of(True, maps, results)]
    pairs = zip(maps, results, strict=True)
    return [TrialRun.of(False, [{**m, **(extra or {})}], [r]) for m, r in pairs]


def _refit(clf, *runs):
    """A validator's refit of ``clf``, keeping the runs of its search as a refit is given them."""
    model = TFClassificationModel._create(b"weights", 4, 3, True, {"seconds": 1.0, "error": None})
    model._keep_search({"estimator": clf.uid, "runs": [r.to_json() for r in runs]})
    return model


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


def test_labels_of_list_values_read_well():
    assert _label([128, 64]) == "[128, 64]"
    assert _label(np.array([16])) == "[16]"
    assert _label(0.001) == "0.001"


# -- a real CrossValidator run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(digits):
    """2 folds over a 2x2 grid on digits; learningRate=1e30 makes two trials fail (NaN loss)."""
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], epochs=2, batchSize=64, dropout=0.0)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[16], [8]])
        .addGrid(clf.learningRate, [0.05, 1e30])
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=2,
        seed=3,
        parallelism=2,
    )
    return cv.fit(train)


def test_report_of_a_real_search(searched):
    report = tuning_report(searched)
    assert len(report) == 4
    assert report["metric"].unique().tolist() == ["accuracy"]
    np.testing.assert_allclose(report["mean"], searched.avgMetrics)
    np.testing.assert_allclose(report["std"], searched.stdMetrics)
    assert (report["seconds"] > 0).all() and np.isfinite(report["seconds"]).all()

    failed = report["learningRate"] == 1e30
    assert failed.sum() == 2
    assert all("training loss became nan" in f for f in report.loc[failed, "failure"])
    assert (report.loc[~failed, "failure"] == "").all()
    assert sorted(report.loc[failed, "rank"]) == [3, 4]
    assert sorted(report["rank"]) == [1, 2, 3, 4]

    ok = report[~failed].sort_values("rank")
    assert ok["mean"].is_monotonic_decreasing
    (best,) = report.index[report["best"]]
    assert report.loc[best, "rank"] == 1
    assert report.loc[best, "mean"] > 0.5
    assert report.loc[best, "hiddenLayers"] == searched.bestModel.getHiddenLayers()
    assert report.loc[best, "learningRate"] == searched.bestModel.getLearningRate()
    assert searched.bestModel.trainingFailure is None


def test_the_refit_keeps_the_trials_of_its_own_search_through_save_and_load(searched, tmp_path):
    runs = searched.bestModel.history["search"]["runs"]
    assert [len(run["trials"]) for run in runs] == [4, 4]  # the two folds, nothing older
    path = str(tmp_path / "cv")
    searched.save(path)
    loaded = CrossValidatorModel.load(path)
    before, after = tuning_report(searched), tuning_report(loaded)
    assert after["seconds"].tolist() == before["seconds"].tolist()
    assert after["failure"].tolist() == before["failure"].tolist()
    assert sum("training loss became nan" in f for f in after["failure"]) == 2
    assert after["rank"].tolist() == before["rank"].tolist()


def test_a_search_that_failed_leaves_no_trials_to_the_next_one(digits):
    """Every trial of the first search fails (its learningRate, outside the grid): it ends with
    TrainingError. Fixed and run again over the same grid, the report shows only the new one."""
    train, _ = digits
    clf = TFClassifier(epochs=1, batchSize=64, learningRate=1e30)
    grid = ParamGridBuilder().addGrid(clf.hiddenLayers, [[8], [4]]).build()
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(estimator=clf, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2)
    with pytest.raises(TrainingError, match="All 2 trials of TFClassifier failed"):
        cv.fit(train)
    clf.setLearningRate(0.05)
    report = tuning_report(cv.fit(train))
    assert report["failure"].tolist() == ["", ""]
    assert len(report["seconds"].dropna()) == 2


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


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_plot_of_a_real_search(searched, tmp_path):
    path = plot_sensitivity(
        tuning_report(searched), x="learningRate", line="hiddenLayers", path=str(tmp_path / "s.png")
    )
    assert path == str(tmp_path / "s.png")
    width, height = _png_size(path)
    assert (width, height) == (640, 420)
    assert 10_000 < (tmp_path / "s.png").stat().st_size < 200_000
    # straight from the validator model, one line, linear axis, into a new folder
    other = plot_sensitivity(
        searched, x="learningRate", line=None, path=str(tmp_path / "new" / "o.png"), log_x=False
    )
    assert _png_size(other) == (640, 420)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"x": "batchSize"},
            r"plot_sensitivity: x='batchSize' is not a Param column of the report. "
            r"Param columns: \['hiddenLayers', 'learningRate'\].",
        ),
        ({"line": "optimizer"}, r"line='optimizer' is not a Param column of the report"),
        ({"x": "mean"}, r"x='mean' is not a Param column"),
        ({"x": "hiddenLayers", "line": None}, r"x='hiddenLayers' must hold numbers in every row"),
    ],
)
def test_plot_errors(spark, tmp_path, kwargs, message):
    clf = TFClassifier()
    maps = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[8], [16]])
        .addGrid(clf.learningRate, [0.01, 0.1])
        .build()
    )
    report = tuning_report(_cv_model(None, maps, [0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match=message):
        plot_sensitivity(report, path=str(tmp_path / "p.png"), **kwargs)
    assert not (tmp_path / "p.png").exists()


def test_plot_log_axis_needs_positive_x(spark, tmp_path):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.dropout, [0.0, 0.5]).build()
    report = tuning_report(_cv_model(None, maps, [0.1, 0.2]))
    with pytest.raises(ValueError, match=r"a log x axis needs positive values of 'dropout'"):
        plot_sensitivity(report, x="dropout", line=None, path=str(tmp_path / "p.png"))
    path = plot_sensitivity(
        report, x="dropout", line=None, path=str(tmp_path / "p.png"), log_x=False
    )
    assert _png_size(path) == (640, 420)


def _grid_report(failure: str = ""):
    clf = TFClassifier()
    maps = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[8], [16, 8]])
        .addGrid(clf.learningRate, [0.001, 0.003, 0.01, 0.1])
        .build()
    )
    metrics = [0.81234567, 0.9, 0.93, 0.7, 0.83, 0.91, 0.95, 0.6]
    stds = [0.011, 0.02, 0.015, 0.05, 0.012, 0.018, 0.01, 0.04]
    errors = [None] * 7 + [failure or None]
    best = _refit(clf, *_run(maps, [1.234] * 8, errors), *_run(maps, [2.0] * 8, errors))
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return tuning_report(
        _cv_model(clf, maps, metrics, stds=stds, evaluator=evaluator, folds=3, best=best)
    )


def test_a_printed_report_shows_every_column_in_an_80_column_terminal(spark):
    import pandas as pd

    failure = "training loss became nan at epoch 3, by batch 64 (a long message, in full)"
    report = _grid_report(failure)
    # pandas on an 80-column terminal: as many columns as fit, the rest cut to '...'
    with pd.option_context("display.width", 80, "display.max_columns", 0):
        text = str(report)
        plain = str(pd.DataFrame(report))
    assert "..." in plain  # what a plain DataFrame shows there
    assert "..." not in text
    for column in report.columns:
        assert column in text
    assert failure in text
    assert max(len(line) for line in text.splitlines()) <= 80  # wrapped, not cut
    assert isinstance(report, pd.DataFrame) and type(report[["mean"]]) is type(report)


def test_report_csv_is_best_first_and_rounded(spark, tmp_path):
    import pandas as pd

    from sparktf.workflow import write_report_csv

    report = _grid_report()
    write_report_csv(report, str(tmp_path / "report.csv"))
    text = (tmp_path / "report.csv").read_text()
    csv = pd.read_csv(tmp_path / "report.csv")
    assert list(csv["rank"]) == list(range(1, 9))
    assert list(csv["mean"]) == sorted(csv["mean"], reverse=True)
    assert csv["mean"].iloc[5] == 0.8123 and csv["std"].iloc[5] == 0.011
    assert set(csv["seconds"]) == {1.6}  # mean of 1.234 and 2.0, to one decimal
    assert "0.81234567" not in text and "1.617" not in text
    assert csv["hiddenLayers"].iloc[0] == "[16, 8]" and csv["learningRate"].iloc[0] == 0.01


def test_plot_ticks_every_tried_value_dodges_error_bars_and_names_the_validation(spark):
    from sparktf.report import sensitivity_figure

    report = _grid_report()
    fig = sensitivity_figure(report, data="the digits")
    (ax,) = fig.axes
    assert list(ax.get_xticks()) == [0.001, 0.003, 0.01, 0.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.003", "0.01", "0.1"]
    assert ax.get_title() == "validation accuracy, 3-fold cross-validation on the digits"
    # the two lines' points at one learning rate sit apart on the screen, by the same distance
    bars = [c for c in ax.containers if c.get_label().startswith("hiddenLayers=")]
    lines = [bar.lines[0] for bar in bars]
    assert len(lines) == 2
    screen = [line.get_transform().transform(line.get_xydata()) for line in lines]
    gaps = screen[1][:, 0] - screen[0][:, 0]
    assert np.all(gaps > 3) and np.allclose(gaps, gaps[0])
    low, high = ax.get_ylim()  # the axes' limits still follow the points
    assert low <= 0.6 and high >= 0.95
    # a single line is not moved
    single = sensitivity_figure(report, line=None)
    (only,) = [c.lines[0] for c in single.axes[0].containers if c.get_label() == "accuracy"]
    xs = only.get_transform().transform(only.get_xydata())[:, 0]
    assert np.allclose(xs, single.axes[0].transData.transform(only.get_xydata())[:, 0])
    assert single.axes[0].get_title() == "validation accuracy, 3-fold cross-validation"
