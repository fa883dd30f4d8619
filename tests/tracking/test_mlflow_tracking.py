"""Searches and fits tracked in MLflow as they run: the runs, their curves, outcomes, artifacts
and the best model, with autolog on, after a resume, and with a store that cannot be reached."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import CrossValidator

from sparktf import TFClassifier
from sparktf.search import HalvingTrainValidationSplit

mlflow = pytest.importorskip("mlflow", reason="the test extra installs mlflow-skinny")


# A conftest.py of its own here would be imported under the name ``conftest`` too, and shadow
# tests/conftest.py for the modules that import from it.
@pytest.fixture
def store(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI of a fresh file store in a temporary folder, as MLflow's environment
    names it; the MLflow client reading it."""
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _accuracy():
    return MulticlassClassificationEvaluator(metricName="accuracy")


def _split(clf, maps, **kwargs):
    kwargs.setdefault("seed", 3)
    return HalvingTrainValidationSplit(
        estimator=clf, estimatorParamMaps=maps, evaluator=_accuracy(), **kwargs
    )


def _runs(store, experiment: str):
    exp = store.get_experiment_by_name(experiment)
    return store.search_runs([exp.experiment_id]) if exp else []


def _children(runs, parent: str):
    return sorted(
        (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent),
        key=lambda r: int(r.data.tags["sparktf.map"]),
    )


def _steps(store, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in store.get_metric_history(run_id, key)]


def test_a_halving_search_logs_each_map_its_curves_outcome_and_the_best_model(
    digits, store, tmp_path
):
    train, test = digits
    clf = TFClassifier(hiddenLayers=[16], epochs=3, batchSize=64, seed=5)
    maps = [{clf.learningRate: lr} for lr in (1e-2, 3e-3, 1e30)]  # 1e30: NaN loss, a failure
    model = _split(clf, maps, factor=3, mlflowExperiment="halving").fit(train)

    runs = _runs(store, "halving")
    (search,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert search.info.status == "FINISHED"
    assert search.data.params["search.factor"] == "3"
    assert search.data.params["search.metric"] == "accuracy"
    best = model.searchSummary["best"]
    assert search.data.params["best.learningRate"] == str(maps[best][clf.learningRate])
    assert search.data.metrics["best_accuracy"] == pytest.approx(model.trials[best]["metric"])

    children = _children(runs, search.info.run_id)
    assert [r.data.params["learningRate"] for r in children] == ["0.01", "0.003", "1e+30"]
    outcomes = [r.data.tags["sparktf.outcome"] for r in children]
    assert outcomes[2] == "failed" and children[2].info.status == "FAILED"
    assert "nan" in children[2].data.tags["sparktf.error"].lower()
    assert outcomes[best] == "finished" and children[best].data.tags["sparktf.best"] == "true"
    (other,) = {0, 1} - {best}
    assert outcomes[other] == "dropped at rung 1"
    # the survivor's curve runs on over both rungs (1 epoch, then 2 more from its weights)
    loss = _steps(store, children[best].info.run_id, "loss")
    assert [s for s, _ in loss] == [0, 1, 2] and loss[-1][1] < loss[0][1]
    rung = _steps(store, children[best].info.run_id, "rung_accuracy")
    assert [s for s, _ in rung] == [1, 2]
    assert rung[-1][1] == pytest.approx(model.trials[best]["metric"])
    assert [s for s, _ in _steps(store, children[other].info.run_id, "loss")] == [0]
    assert math.isnan(_steps(store, children[2].info.run_id, "loss")[-1][1])

    names = {a.path for a in store.list_artifacts(search.info.run_id)}
    assert {"tuning_report.csv", "sensitivity.png", "grid.json", "best_model"} <= names
    report = store.download_artifacts(search.info.run_id, "tuning_report.csv", str(tmp_path))
    assert Path(report).read_text().count("\n") == 4  # a header and one line per map

    loaded = mlflow.spark.load_model(f"runs:/{search.info.run_id}/best_model")
    ours = model.bestModel.transform(test).select("prediction").collect()
    theirs = loaded.transform(test).select("prediction").collect()
    assert theirs == ours


def test_a_timed_out_trial_is_stopped_by_its_time_limit(digits, store):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[16], batchSize=64, seed=5)
    maps = [{clf.learningRate: 1e-2, clf.epochs: 50}]
    search = _split(clf, maps, factor=1, trialTimeout=0.01, refit=False, mlflowExperiment="t")
    search.fit(train)
    runs = _runs(store, "t")
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert child.data.tags["sparktf.outcome"] == "stopped by time limit"
    assert child.info.status == "KILLED"
    assert [s for s, _ in _steps(store, child.info.run_id, "loss")] == [0]


def test_with_autolog_the_search_runs_nest_under_one_parent(digits, store):
    train, _ = digits
    mlflow.set_experiment("auto")
    mlflow.pyspark.ml.autolog(log_models=False)
    try:
        clf = TFClassifier(hiddenLayers=[8], epochs=2, batchSize=64, seed=5)
        maps = [{clf.learningRate: lr} for lr in (1e-2, 3e-3)]
        _split(clf, maps, factor=2, mlflowExperiment="ignored-under-a-run").fit(train)
    finally:
        mlflow.pyspark.ml.autolog(disable=True)
    assert store.get_experiment_by_name("ignored-under-a-run") is None
    runs = _runs(store, "auto")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.data.tags for r in parents]
    children = _children(runs, parents[0].info.run_id)
    assert [r.data.tags["sparktf.map"] for r in children] == ["0", "1"]
    assert len(runs) == 3  # no run of autolog's own for the maps or the refit
    mlflow.set_experiment("Default")


def test_a_resumed_search_logs_no_finished_trial_twice(digits, store, tmp_path):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], epochs=2, batchSize=64, seed=5)
    maps = [{clf.learningRate: lr} for lr in (1e-2, 3e-3, 1e30)]
    folder = str(tmp_path / "checkpoints")
    _split(clf, maps, factor=2, checkpointDir=folder, refit=False, mlflowExperiment="r").fit(train)
    before = _runs(store, "r")
    _split(clf, maps, factor=2, checkpointDir=folder, refit=False, mlflowExperiment="r").fit(train)
    after = _runs(store, "r")
    assert sorted(r.info.run_id for r in after) == sorted(r.info.run_id for r in before)

    def outcomes(runs):
        return sorted((r.data.tags.get("sparktf.outcome", ""), r.info.status) for r in runs)

    assert outcomes(after) == outcomes(before)  # the failed map is still failed, not dropped
    assert ("failed", "FAILED") in outcomes(after)
    for run in after:
        if "sparktf.map" in run.data.tags:
            steps = [s for s, _ in _steps(store, run.info.run_id, "loss")]
            assert steps == sorted(set(steps)), steps  # each epoch once


def test_a_store_that_cannot_be_reached_warns_once_and_the_search_goes_on(digits, monkeypatch):
    train, _ = digits
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    try:
        clf = TFClassifier(hiddenLayers=[8], epochs=1, batchSize=64, seed=5)
        maps = [{clf.learningRate: lr} for lr in (1e-2, 3e-3)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _split(clf, maps, factor=1, refit=False, mlflowExperiment="x").fit(train)
    finally:
        mlflow.set_tracking_uri(None)
    tracking = [w for w in caught if "MLflow tracking stopped" in str(w.message)]
    assert len(tracking) == 1, [str(w.message) for w in caught]
    assert len(model.trials) == 2 and not any(t["error"] for t in model.trials)
    assert model.bestModel.hasModel


def test_fit_multiple_logs_one_run_per_map_and_fold_under_a_cross_validator(digits, store):
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], epochs=2, batchSize=64, seed=5, mlflowExperiment="cv")
    maps = [{clf.learningRate: lr} for lr in (1e-2, 1e30)]
    cv = CrossValidator(
        estimator=clf, estimatorParamMaps=maps, evaluator=_accuracy(), numFolds=2, parallelism=2
    )
    # pyspark takes the models in threads of its own: the runs still nest under the active run
    with mlflow.start_run(experiment_id=store.create_experiment("cv")) as parent:
        cv.fit(train)
    runs = _runs(store, "cv")
    trials = [r for r in runs if "sparktf.fitMultipleCall" in r.data.tags]
    nested = {
        r.data.tags.get("mlflow.parentRunId") for r in runs if r.info.run_id != parent.info.run_id
    }
    assert nested == {parent.info.run_id}
    seen = sorted(
        (r.data.tags["sparktf.fitMultipleCall"], r.data.params["learningRate"]) for r in trials
    )
    assert seen == [("1", "0.01"), ("1", "1e+30"), ("2", "0.01"), ("2", "1e+30")]
    for run in trials:
        failed = run.data.params["learningRate"] == "1e+30"
        assert run.data.tags["sparktf.outcome"] == ("failed" if failed else "finished")
        assert [s for s, _ in _steps(store, run.info.run_id, "loss")] == ([0] if failed else [0, 1])
    (refit,) = [r for r in runs if r.data.tags.get("sparktf.job") == f"{clf.uid} fit"]
    assert refit.data.params["learningRate"] == "0.01"


def test_tracking_without_mlflow_says_how_to_install_it(digits, monkeypatch):
    import sys

    train, _ = digits
    monkeypatch.setitem(sys.modules, "mlflow", None)
    clf = TFClassifier(hiddenLayers=[8], epochs=1, mlflowExperiment="x")
    with pytest.raises(ImportError, match="pip install mlflow"):
        clf.fit(train)


def test_tune_classifier_tracks_the_tuning_and_nests_the_search_under_it(digits, store, tmp_path):
    from sparktf.workflow import SearchSpace, tune_classifier

    train, test = digits
    space = SearchSpace(hiddenLayers=[[8]], learningRate=[3e-3, 3e-2], epochs=[2], batchSize=[64])
    result = tune_classifier(
        train, str(tmp_path / "out"), test=test, space=space, halving=2, folds=2, track="tune"
    )
    runs = _runs(store, "tune")
    (tuning,) = [r for r in runs if r.data.tags.get("sparktf.kind") == "tuning"]
    assert tuning.data.metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert tuning.data.params["search.numFolds"] == "2"  # the search logged into it
    names = {a.path for a in store.list_artifacts(tuning.info.run_id, "tuning")}
    assert names == {"tuning/report.csv", "tuning/sensitivity.png"}
    children = _children(runs, tuning.info.run_id)
    assert len(children) == 2
    # two folds: each fold's curve and their mean, one value per epoch
    for child in children:
        for key in ("fold1/loss", "fold2/loss", "loss"):
            assert len(_steps(store, child.info.run_id, key)) >= 1


def test_sparktf_tune_passes_its_mlflow_experiment_to_the_tuning(capsys, monkeypatch, tmp_path):
    import sparktf.cli.tune
    import sparktf.datasets
    from sparktf.cli import main

    passed = {}

    def tune_classifier(train, output, **kwargs):
        passed.update(kwargs)

    class Rows:
        def randomSplit(self, weights, seed):
            return self, self

        def cache(self):
            return self

        def count(self):
            return 10

    monkeypatch.setattr(sparktf.cli.tune, "start_spark", lambda args, console: None)
    monkeypatch.setattr(sparktf.datasets, "load_digits", lambda spark: Rows())
    monkeypatch.setattr(sparktf.cli.tune, "tune_classifier", tune_classifier)
    args = ["tune", "-q", "--output", str(tmp_path / "o"), "--mlflow-experiment", "nightly"]
    assert main(args) == 0, capsys.readouterr().err
    assert passed["track"] == "nightly"
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)
    assert main([*args[:-2], "--mlflow-experiment", "x"]) == 2
    assert "needs the mlflow package: pip install mlflow" in capsys.readouterr().err


def test_importing_sparktf_imports_no_mlflow():  # no Spark
    import subprocess
    import sys

    code = (
        "import sys, sparktf, sparktf.search, sparktf.tracking, sparktf.workflow\n"
        "from sparktf import TFClassifier\n"
        "TFClassifier(mlflowExperiment='x')\n"
        "print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
