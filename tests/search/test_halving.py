"""The successive-halving validators (sparktf.search): rungs, survivors that continue, every
fold in one job, failures, deadlines, checkpoints and resume, persistence, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import MulticlassClassificationEvaluator, RegressionEvaluator
from pyspark.ml.feature import StandardScaler

from sparktf import TFClassificationModel, TFClassifier, tuning_report
from sparktf.search import (
    HalvingCrossValidator,
    HalvingCrossValidatorModel,
    HalvingTrainValidationSplit,
    HalvingTrainValidationSplitModel,
    rung_schedule,
)


def _accuracy():
    return MulticlassClassificationEvaluator(metricName="accuracy")


def _records(folder) -> dict[str, dict]:
    trials = Path(folder) / "trials"
    return {p.stem: json.loads(p.read_text()) for p in trials.glob("*.json")}


def _search(clf, maps, **kwargs):
    kwargs.setdefault("seed", 3)
    return HalvingTrainValidationSplit(
        estimator=clf, estimatorParamMaps=maps, evaluator=_accuracy(), **kwargs
    )


def test_the_rungs_halve_the_maps_and_multiply_the_epochs():  # no Spark
    assert [(r.epochs, r.maps) for r in rung_schedule(27, 27, 3)] == [
        (1, 27),
        (3, 9),
        (9, 3),
        (27, 1),
    ]
    assert [(r.epochs, r.maps) for r in rung_schedule(5, 4, 2)] == [(1, 5), (2, 3), (4, 2)]
    with pytest.raises(ValueError, match="factor"):
        rung_schedule(4, 4, 0)


def test_survivors_continue_from_their_weights_and_a_diverging_map_is_dropped(digits, tmp_path):
    train, test = digits
    clf = TFClassifier(hiddenLayers=[32], epochs=4, batchSize=64, seed=5)
    diverging = {clf.learningRate: 1e38, clf.optimizer: "sgd", clf.standardization: False}
    maps = [diverging] + [{clf.learningRate: rate} for rate in (1e-4, 3e-3, 1e-2)]
    search = _search(clf, maps, factor=2, checkpointDir=str(tmp_path / "ck"))
    model = search.fit(train)

    assert isinstance(model, HalvingTrainValidationSplitModel)
    assert model.searchSummary["rungs"] == [
        {"epochs": 1, "maps": 4},
        {"epochs": 2, "maps": 2},
        {"epochs": 4, "maps": 1},
    ]
    rungs = [t["rung"] for t in model.trials]
    assert rungs.count(3) == 1 and rungs.count(2) == 1 and rungs.count(1) == 2
    best = model.searchSummary["best"]
    assert model.trials[best]["rung"] == 3 and model.trials[best]["epochs"] == 4
    assert model.trials[0]["error"] and rungs[0] == 1  # the diverging map went no further
    assert model.validationMetrics[best] > 0.9
    assert _accuracy().evaluate(model.transform(test)) > 0.9

    # Each rung's model starts from the one before: its optimizer kept counting steps.
    records = _records(tmp_path / "ck")
    last = records[f"m{best:04d}-f0-e0004"]
    before = records[f"m{best:04d}-f0-e0002"]
    first = records[f"m{best:04d}-f0-e0001"]
    assert last["startedFrom"] == before["modelDigest"]
    assert before["startedFrom"] == first["modelDigest"] and first["startedFrom"] is None
    steps = first["iterations"]
    assert steps > 0 and before["iterations"] == 2 * steps and last["iterations"] == 4 * steps

    report = tuning_report(model)
    assert report["rung"].tolist() == rungs
    assert report.loc[best, "best"] and report.loc[best, "rank"] == 1
    assert report.loc[0, "failure"] and report.loc[0, "rank"] == len(maps)

    from sparktf.report import sensitivity_figure

    legend = sensitivity_figure(model, x="learningRate", line=None).axes[0].get_legend()
    assert "stopped at an earlier rung" in [t.get_text() for t in legend.get_texts()]

    # saved and loaded like pyspark's validators, with its trials
    path = str(tmp_path / "saved")
    model.write().overwrite().save(path)
    loaded = HalvingTrainValidationSplitModel.load(path)
    assert loaded.trials == model.trials and loaded.validationMetrics == model.validationMetrics
    assert tuning_report(loaded)["rung"].tolist() == rungs
    predictions = [r.prediction for r in model.transform(test).select("prediction").collect()]
    again = [r.prediction for r in loaded.transform(test).select("prediction").collect()]
    assert predictions == again
    restored = HalvingTrainValidationSplit.load(_saved_estimator(search, tmp_path))
    assert restored.getFactor() == 2 and len(restored.getEstimatorParamMaps()) == 4


def _saved_estimator(search, tmp_path) -> str:
    path = str(tmp_path / "estimator")
    search.write().overwrite().save(path)
    return path


def test_resume_skips_finished_trials_and_refuses_a_changed_search(digits, tmp_path):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], epochs=3, batchSize=64, seed=5)
    maps = [{clf.learningRate: rate} for rate in (1e-3, 1e-2, 3e-2)]
    folder = str(tmp_path / "ck")
    first = _search(clf, maps, factor=3, checkpointDir=folder, refit=False).fit(train)
    assert first.searchSummary["trialsTrained"] == 4  # 3 maps for 1 epoch, 1 for 3
    again = _search(clf, maps, factor=3, checkpointDir=folder, refit=False).fit(train)
    assert again.searchSummary["trialsTrained"] == 0
    assert again.validationMetrics == first.validationMetrics
    assert again.bestModel.hasModel  # the best map's model, read back from the folder

    changed = [{clf.learningRate: rate} for rate in (1e-3, 1e-2, 1e-1)]
    with pytest.raises(ValueError, match=r"different search \(changed: grid\)"):
        _search(clf, changed, factor=3, checkpointDir=folder).fit(train)
    with pytest.raises(ValueError, match=r"changed: data"):
        _search(clf, maps, factor=3, checkpointDir=folder).fit(train.limit(500))


def test_every_fold_of_every_map_trains_in_one_job(digits, monkeypatch):
    """factor=1: the exhaustive k-fold search, 2 maps x 3 folds as the 6 tasks of one job (an
    exhaustive search may search the epochs too)."""
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], epochs=2, batchSize=64, seed=5)
    maps = [{clf.learningRate: 1e-2}, {clf.learningRate: 3e-2, clf.epochs: 1}]
    search = HalvingCrossValidator(
        estimator=clf,
        estimatorParamMaps=maps,
        evaluator=_accuracy(),
        numFolds=3,
        factor=1,
        collectSubModels=True,
        refit=False,
    )
    from sparktf.search import _driver

    folds = []  # each map's fold metrics, as the tasks measured them
    outcome = _driver._Search._outcome

    def spied(self, rungs, data):
        folds.extend([[float(self.latest[(m, f)]["metric"]) for f in range(3)] for m in range(2)])
        return outcome(self, rungs, data)

    monkeypatch.setattr(_driver._Search, "_outcome", spied)
    model = search.fit(train)
    assert isinstance(model, HalvingCrossValidatorModel)
    workers = [m.history["worker"] for fold in model.subModels for m in fold]
    assert len(workers) == 6 and len({w["jobGroup"] for w in workers}) == 1
    events = sorted([(w["started"], 1) for w in workers] + [(w["finished"], -1) for w in workers])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2  # both slots of local[2] busy
    assert [t["epochs"] for t in model.trials] == [2, 1]  # each map its own epochs
    assert len(model.avgMetrics) == 2 and all(m > 0.5 for m in model.avgMetrics)
    # pyspark's reading: the mean and the (population) standard deviation of each map's folds
    assert len(folds) == 2 and len({m for fold in folds for m in fold}) > 1, folds
    assert model.avgMetrics == pytest.approx([sum(f) / 3 for f in folds], rel=1e-12)
    assert model.stdMetrics == pytest.approx([float(np.std(f)) for f in folds], rel=1e-12)


def test_a_trial_time_limit_stops_a_slow_trial_at_the_end_of_its_epoch(digits):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], batchSize=64, seed=5)
    maps = [{clf.learningRate: 1e-2, clf.epochs: 50}]  # factor=1 may search the epochs too
    model = _search(clf, maps, factor=1, trialTimeout=0.01, refit=False).fit(train)
    (trial,) = model.trials
    assert trial["timedOut"] and trial["epochs"] == 1 and not trial["error"]
    report = tuning_report(model)
    assert report["timedOut"].tolist() == [True]
    assert report["epochs"].tolist() == [50] and report["epochsTrained"].tolist() == [1]
    assert model.validationMetrics[0] > 0.3  # it keeps the weights it trained


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("pipeline", TypeError, "trains a TFClassifier directly, not a Pipeline"),
        ("evaluator", TypeError, "computes the metrics of MulticlassClassificationEvaluator"),
        ("metric", ValueError, "metric 'truePositiveRateByLabel' is not computed"),
        ("epochs", ValueError, "'epochs' is the budget the halving search spends"),
        ("empty", ValueError, "estimatorParamMaps is empty"),
    ],
)
def test_a_search_it_cannot_run_is_refused_before_any_job(digits, change, error, message):
    train, _ = digits
    clf = TFClassifier(epochs=2)
    maps = [{clf.learningRate: 1e-3}, {clf.learningRate: 1e-2}]
    estimator, evaluator = clf, _accuracy()
    if change == "pipeline":
        estimator = Pipeline(stages=[StandardScaler(inputCol="features", outputCol="s"), clf])
    elif change == "evaluator":
        evaluator = RegressionEvaluator()
    elif change == "metric":
        evaluator = MulticlassClassificationEvaluator(metricName="truePositiveRateByLabel")
    elif change == "epochs":
        maps = [{clf.epochs: 2}, {clf.epochs: 4}]
    elif change == "empty":
        maps = []
    search = HalvingCrossValidator(
        estimator=estimator, estimatorParamMaps=maps, evaluator=evaluator
    )
    with pytest.raises(error, match=message):
        search.fit(train)


@pytest.mark.cluster
def test_a_search_whose_driver_is_killed_resumes_where_it_stopped(search_resume_run):
    """tests/jobs/search_job.py runs a search with a checkpoint folder; its driver (and the JVM and
    workers with it) is killed once a few trials are written; the rerun trains the rest only
    (the ``search_resume_run`` job of tests/conftest.py)."""
    finished, result = search_resume_run["finished"], search_resume_run["result"]
    assert finished >= 4
    assert result["total"] == len(_records(search_resume_run["folder"]))
    assert result["trained"] == result["total"] - finished
    assert result["trained"] < result["total"]
    assert not math.isnan(result["best"])


def test_tune_classifier_searches_by_halving(digits, tmp_path):
    from sparktf.workflow import SearchSpace, tune_classifier

    train, test = digits
    space = SearchSpace(hiddenLayers=[[16]], learningRate=[1e-4, 1e-2, 3e-2], epochs=[3])
    lines: list[str] = []
    result = tune_classifier(
        train,
        str(tmp_path / "out"),
        test=test,
        space=space,
        validator="tvs",
        halving=3,
        echo=lines.append,
    )
    report = result.report
    assert sorted(report["rung"].tolist()) == [1, 1, 2]
    assert report.loc[report["best"], "rung"].tolist() == [2]
    assert result.test_accuracy > 0.8
    assert (tmp_path / "out" / "report.csv").read_text().splitlines()[0].count("rung") == 1
    with pytest.raises(ValueError, match=r"give space\.epochs one value"):
        tune_classifier(train, str(tmp_path / "o2"), space=SearchSpace(epochs=[2, 4]), halving=3)


def test_the_fitted_models_take_pyspark_s_constructor_arguments():
    import inspect

    from pyspark.ml.tuning import CrossValidatorModel, TrainValidationSplitModel

    for ours, theirs in (
        (HalvingCrossValidatorModel, CrossValidatorModel),
        (HalvingTrainValidationSplitModel, TrainValidationSplitModel),
    ):
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(theirs).parameters
        )
        model = ours(TFClassificationModel(), [0.5], subModels=None)
        assert model.trials == [] and model.searchSummary == {}
        assert isinstance(model.bestModel, TFClassificationModel)
