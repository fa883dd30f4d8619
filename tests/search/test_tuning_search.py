"""A real CrossValidator search of a TFClassifier on digits: its tuning_report, the trials its
refit keeps through save and load, a failed search followed by a fixed one, and its plot."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import CrossValidator, CrossValidatorModel, ParamGridBuilder
from tuning_support import _png_size

from sparktf import TFClassifier
from sparktf.errors import TrainingError
from sparktf.tuning import plot_sensitivity, tuning_report


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
