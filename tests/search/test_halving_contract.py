"""The halving validators answer like pyspark's validators (sparktf issue 33): seed, metrics
that name the best map, NaN metrics, the model bytes a search keeps, parallelism, the saved
TrainValidationSplitModel layout, data above the broadcast limit and the epochs trained."""

from __future__ import annotations

import json
import logging
import math

import pytest

from sparktf import TFClassifier, tuning_report
from sparktf.search import HalvingCrossValidator, HalvingTrainValidationSplit, Rung

VALIDATORS = [HalvingCrossValidator, HalvingTrainValidationSplit]


@pytest.mark.parametrize("cls", VALIDATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("how", ["init", "setParams", "setSeed"])
def test_seed_none_is_refused_not_ignored(cls, how):
    message = rf"'seed' param of {cls.__name__} must be an int\. Got seed=None instead"
    with pytest.raises(TypeError, match=message):
        if how == "init":
            cls(estimator=TFClassifier(), seed=None)
        elif how == "setParams":
            cls(seed=5).setParams(seed=None)
        else:
            cls(seed=5).setSeed(None)
    assert cls(seed=5).setParams(seed=7).getSeed() == 7


def _accuracy():
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    return MulticlassClassificationEvaluator(metricName="accuracy")


def test_data_above_the_broadcast_limit_is_refused_before_it_is_staged(digits, caplog):
    train, _ = digits
    caplog.set_level(logging.INFO, logger="sparktf")
    clf = TFClassifier(hiddenLayers=[8], epochs=2, maxBroadcastBytes=1000)
    search = HalvingTrainValidationSplit(
        estimator=clf, estimatorParamMaps=[{clf.learningRate: 1e-2}], evaluator=_accuracy()
    )
    with pytest.raises(ValueError) as refused:
        search.fit(train)
    staged = [r.getMessage() for r in caplog.records if " staging " in r.getMessage()]
    assert staged == []  # nothing was written before the refusal
    assert refused.match(
        r"HalvingTrainValidationSplit needs training data that fits the broadcast limit "
        r"\(maxBroadcastBytes=1000 bytes\); this data is \d+ bytes"
    )


def test_epochs_trained_after_an_early_stop_are_the_epochs_run(spark, tmp_path):
    """Zero features (the network's logits stay 0: every row's loss is log 2) and a learning rate
    too small to move a weight: the loss is the same every epoch, so early stopping (patience 1)
    ends every rung after its second epoch. 3 maps, 9
    epochs, factor 3: rung 1 (to epoch 3) trains 2, the survivor's rung 2 (epochs 3 to 9) 2."""
    from pyspark.ml.linalg import Vectors

    rows = [(Vectors.dense([0.0, 0.0, 0.0]), float(i % 2)) for i in range(80)]
    df = spark.createDataFrame(rows, ["features", "label"])
    clf = TFClassifier(
        hiddenLayers=[4],
        epochs=9,
        batchSize=256,
        dropout=0.0,
        standardization=False,
        earlyStoppingPatience=1,
        seed=3,
    )
    maps = [{clf.learningRate: rate} for rate in (1e-30, 2e-30, 3e-30)]
    model = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=maps,
        evaluator=_accuracy(),
        refit=False,
        checkpointDir=str(tmp_path / "ck"),
    ).fit(df)
    assert [r["epochs"] for r in model.searchSummary["rungs"]] == [3, 9]
    ran = {}
    for path in (tmp_path / "ck" / "trials").glob("*.json"):
        ran.setdefault(path.stem[:5], []).append(
            len(json.loads(path.read_text())["history"]["loss"])
        )
    assert sorted(sum(v) for v in ran.values()) == [2, 2, 4]  # the epochs each map ran
    assert sorted(t["epochs"] for t in model.trials) == [2, 2, 4]
    best = model.searchSummary["best"]
    assert model.trials[best]["rung"] == 2 and model.trials[best]["epochs"] == 4
    assert tuning_report(model)["epochsTrained"].tolist() == [t["epochs"] for t in model.trials]


def _ranked_search(metrics: list[float], larger_better: bool):
    """A search's driver state after one rung whose maps scored ``metrics`` (no Spark)."""
    from sparktf.search._driver import SearchPlan, _Search
    from sparktf.search._metrics import MetricSpec

    clf = TFClassifier(epochs=4)
    maps = [{clf.learningRate: 1e-3 * (i + 1)} for i in range(len(metrics))]
    name = "accuracy" if larger_better else "logLoss"
    plan = SearchPlan(
        "HalvingTrainValidationSplit", 0, 0.75, 3, 3, 1, MetricSpec(name, larger_better)
    )
    search = _Search(None, clf, maps, None, plan, [str(i) for i in range(len(maps))])
    for m, metric in enumerate(metrics):
        search.latest[(m, 0)] = {
            "metric": metric,
            "error": None,
            "seconds": 1.0,
            "epochsTrained": 1,
        }
        search.rung_of[m] = 0
    return search


@pytest.mark.parametrize(
    ("metrics", "larger_better"),
    [([math.nan, 0.5, 0.9], True), ([math.nan, 0.9, 0.5], False), ([0.9, math.nan, 0.5], False)],
)
def test_a_nan_metric_ranks_last_in_promotion_and_the_best_map(metrics, larger_better):
    search = _ranked_search(metrics, larger_better)
    assert search.promote([0, 1, 2], 1) == [2]
    nan_at = [math.isnan(v) for v in metrics].index(True)
    assert search.promote([0, 1, 2], 2) == [m for m in range(3) if m != nan_at]
    outcome = search._outcome([Rung(1, 3)], None)
    assert outcome.best == 2


def _scripted_rungs(monkeypatch, script: list[dict[int, float]]) -> None:
    """Rungs that score each map as ``script[rung][map]`` on every fold, without training."""
    from sparktf.search._driver import _Search

    def run_rung(self, shared, tasks, r, rungs):
        for t in tasks:
            self.latest[(t.map_index, t.fold)] = {
                "metric": script[r][t.map_index],
                "error": None,
                "seconds": 1.0,
                "epochsTrained": rungs[r].epochs,
                "model": None,
                "history": {},
            }

    monkeypatch.setattr(_Search, "run_rung", run_rung)


@pytest.mark.parametrize("cls", VALIDATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("larger_better", [True, False], ids=["accuracy", "logLoss"])
def test_avg_metrics_name_the_best_map_by_argmax(spark, tmp_path, monkeypatch, cls, larger_better):
    """Map 1 scores better at rung 1 than map 0, the winner, at rung 2; it was dropped after
    rung 1, so pyspark's reading (argmax of the metrics) must not name it."""
    import numpy as np
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.linalg import Vectors

    if larger_better:
        script, evaluator = [{0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.6}], _accuracy()
    else:
        script = [{0: 0.2, 1: 0.3, 2: 0.4}, {0: 0.5}]
        evaluator = MulticlassClassificationEvaluator(metricName="logLoss")
    _scripted_rungs(monkeypatch, script)
    rows = [(Vectors.dense([float(i), 1.0]), float(i % 2)) for i in range(20)]
    df = spark.createDataFrame(rows, ["features", "label"])
    clf = TFClassifier(epochs=3)
    maps = [{clf.learningRate: rate} for rate in (1e-3, 1e-2, 1e-1)]
    split = {"numFolds": 2} if cls is HalvingCrossValidator else {}
    search = cls(estimator=clf, estimatorParamMaps=maps, evaluator=evaluator, refit=False, **split)
    model = search.fit(df)

    assert model.searchSummary["best"] == 0
    metrics = model.avgMetrics if split else model.validationMetrics
    pick = np.argmax if larger_better else np.argmin
    assert pick(metrics) == 0
    worst = -math.inf if larger_better else math.inf
    assert metrics == [script[1][0], worst, worst]
    if split:
        assert model.stdMetrics[0] == 0.0 and all(math.isnan(s) for s in model.stdMetrics[1:])
    # each map's own metrics are kept: where it stopped and at every rung
    assert [t["metric"] for t in model.trials] == [script[1][0], script[0][1], script[0][2]]
    assert [t["rungMetrics"] for t in model.trials] == [
        [script[0][0], script[1][0]],
        [script[0][1]],
        [script[0][2]],
    ]
    report = tuning_report(model)
    assert report["mean"].tolist() == [t["metric"] for t in model.trials]
    assert report["rank"].tolist() == [1, 2, 3] and report["best"].tolist() == [True, False, False]

    path = str(tmp_path / "model")
    model.write().save(path)
    loaded = type(model).load(path)
    assert (loaded.avgMetrics if split else loaded.validationMetrics) == metrics
    assert loaded.trials == model.trials


def test_a_search_keeps_only_the_model_bytes_it_can_still_use(digits, tmp_path, monkeypatch):
    """4 maps x 2 folds, factor 2: rung 1 trains 8 trials, rung 2 the best 2 maps' 4."""
    import sparktf.search.halving as halving
    from sparktf.search._checkpoints import CheckpointDir
    from sparktf.search._driver import _Search

    def holding(results) -> int:
        return sum(r.get("model") is not None for r in results)

    before_rung, outcomes, reads = [], [], []
    run_rung, run_search, read = _Search.run_rung, halving.run_search, CheckpointDir.model

    def spy_rung(self, shared, tasks, r, rungs):
        before_rung.append(holding(self.latest.values()))
        return run_rung(self, shared, tasks, r, rungs)

    def spy_search(*args, **kwargs):
        outcomes.append(run_search(*args, **kwargs))
        return outcomes[-1]

    def spy_read(self, name):
        reads.append(name)
        return read(self, name)

    monkeypatch.setattr(_Search, "run_rung", spy_rung)
    monkeypatch.setattr(halving, "run_search", spy_search)
    monkeypatch.setattr(CheckpointDir, "model", spy_read)
    train, test = digits
    clf = TFClassifier(hiddenLayers=[8], epochs=2, batchSize=64, seed=5)
    maps = [{clf.learningRate: rate} for rate in (1e-3, 3e-3, 1e-2, 3e-2)]
    folder = str(tmp_path / "ck")

    def search(refit: bool):
        return HalvingCrossValidator(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=_accuracy(),
            numFolds=2,
            factor=2,
            refit=refit,
            checkpointDir=folder,
        )

    model = search(refit=False).fit(train)
    assert model.searchSummary["rungs"] == [{"epochs": 1, "maps": 4}, {"epochs": 2, "maps": 2}]
    # rung 2 starts holding the 2 survivors' 4 models and the best dropped map's first fold
    assert before_rung == [0, 5]
    trials = [t for m in outcomes[-1].maps for t in m.trials]
    assert holding(trials) == 1  # the best map's first fold: refit=False's bestModel
    assert _accuracy().evaluate(model.transform(test)) > 0.5

    # resumed with refit: every trial is in the folder and no model is read back
    again = search(refit=True).fit(train)
    assert again.searchSummary["trialsTrained"] == 0
    assert reads == [] and holding([t for m in outcomes[-1].maps for t in m.trials]) == 0


@pytest.mark.parametrize("cls", VALIDATORS, ids=lambda c: c.__name__)
def test_parallelism_is_accepted_and_round_trips(spark, tmp_path, cls):
    search = cls(
        estimator=TFClassifier(), estimatorParamMaps=[{}], evaluator=_accuracy(), parallelism=2
    )
    assert search.getParallelism() == 2 and cls().getParallelism() == 0
    assert search.copy().getParallelism() == 2
    assert cls().setParallelism(3).getParallelism() == 3
    path = str(tmp_path / "search")
    search.write().save(path)
    assert cls.load(path).getParallelism() == 2
    with pytest.raises(ValueError, match=rf"'parallelism' param of {cls.__name__} must be an int"):
        cls(parallelism=-1)._plan(TFClassifier(), [{}], _accuracy())


def test_parallelism_caps_the_trials_at_once_and_sub_models_save_in_pyspark_layout(
    digits, tmp_path
):
    """parallelism=1 on local[2]: the 2 trials of the rung train one after the other (two jobs);
    the TrainValidationSplitModel's sub-models are saved as pyspark saves them."""
    import os

    from sparktf.search import HalvingTrainValidationSplitModel

    train, test = digits
    clf = TFClassifier(hiddenLayers=[8], epochs=1, batchSize=64, seed=5)
    maps = [{clf.learningRate: 1e-2}, {clf.learningRate: 3e-2}]
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=maps,
        evaluator=_accuracy(),
        factor=1,
        parallelism=1,
        collectSubModels=True,
        refit=False,
    )
    model = search.fit(train)
    workers = [m.history["worker"] for m in model.subModels]
    assert len({w["jobGroup"] for w in workers}) == 2
    first, second = sorted(workers, key=lambda w: w["started"])
    assert first["finished"] <= second["started"]  # never two at once

    path = str(tmp_path / "model")
    model.write().option("persistSubModels", "true").save(path)
    assert sorted(os.listdir(os.path.join(path, "subModels"))) == ["0", "1"]  # pyspark's TVS
    loaded = HalvingTrainValidationSplitModel.load(path)
    assert len(loaded.subModels) == 2
    for ours, theirs in zip(model.subModels, loaded.subModels, strict=True):
        a = ours.transform(test).select("prediction").collect()
        assert a == theirs.transform(test).select("prediction").collect()
