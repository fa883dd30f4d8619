"""TFClassificationModel against MLlib's model contract: thresholds, setters, Params copied
from a grid, ``kerasModel=None``."""

from __future__ import annotations

import pytest
from pyspark.ml.linalg import Vectors

from sparktf import TFClassifier
from sparktf.classification import TFClassificationModel


def _unfitted_model(num_classes: int = 3) -> TFClassificationModel:
    """A model without a network (as a failed trial's): enough for the checks before scoring."""
    return TFClassificationModel._create(None, 2, num_classes, True, {"error": "no network"})


def _rows(spark):
    return spark.createDataFrame(
        [(Vectors.dense([0.0, 1.0]), 0.0), (Vectors.dense([1.0, 0.0]), 1.0)],
        ["features", "label"],
    )


THRESHOLDS_REFUSED = [
    ([0.5, -0.1, 1.0], r"must hold values >= 0 \(at most one of them 0\), as MLlib requires\. "
     r"Got \[0\.5, -0\.1, 1\.0\] instead, with negative or NaN value\(s\) \[-0\.1\]"),
    ([0.5, float("nan"), 1.0], r".* negative or NaN value\(s\) \[nan\]"),
    ([0.0, 0.0, 1.0], r"must have at most one value equal to 0 .* Got 2 zeros in "
     r"\[0\.0, 0\.0, 1\.0\] instead"),
]  # fmt: skip


@pytest.mark.parametrize(("thresholds", "message"), THRESHOLDS_REFUSED, ids=["neg", "nan", "0s"])
def test_thresholds_follow_mllib_rules_at_transform(spark, thresholds, message):
    model = _unfitted_model().setThresholds(thresholds)
    with pytest.raises(
        ValueError, match="The 'thresholds' param of TFClassificationModel " + message
    ):
        model.transform(_rows(spark))


@pytest.mark.parametrize(("thresholds", "message"), THRESHOLDS_REFUSED, ids=["neg", "nan", "0s"])
def test_thresholds_follow_mllib_rules_before_a_fit(spark, thresholds, message):
    clf = TFClassifier(thresholds=thresholds, epochs=1)
    with pytest.raises(ValueError, match="The 'thresholds' param of TFClassifier " + message):
        clf.fit(_rows(spark))


def test_thresholds_with_one_zero_are_accepted():
    assert _unfitted_model().setThresholds([0.0, 1.0, 2.0])._thresholds() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"one value per class \(3\)\. Got 2 values instead"):
        _unfitted_model().setThresholds([0.0, 1.0])._thresholds()


def _tiny(spark, rows: int = 16):
    return spark.createDataFrame(
        [(Vectors.dense([float(i % 2), float(i % 3)]), float(i % 2)) for i in range(rows)],
        ["features", "label"],
    )


def test_a_map_gives_the_model_only_this_classifiers_params_by_identity(spark):
    from pyspark.ml.classification import LogisticRegression

    lr = LogisticRegression()  # its predictionCol has the same name as the classifier's
    clf = TFClassifier(epochs=1, hiddenLayers=[4], batchSize=8)
    grid = [{lr.predictionCol: "lr_prediction", clf.predictBatchSize: 7}]
    (index, model), *_ = list(clf.fitMultiple(_tiny(spark), grid))
    assert index == 0 and model.hasModel
    assert model.getPredictBatchSize() == 7
    assert model.getPredictionCol() == "prediction"
    assert "prediction" in model.transform(_tiny(spark)).columns


@pytest.mark.parametrize("how", ["setKerasModel", "setParams", "constructor"])
def test_keras_model_none_means_the_built_in_family_however_it_is_set(how):
    json_model = '{"class_name": "Sequential", "config": {}}'
    if how == "constructor":
        clf = TFClassifier(kerasModel=None)
    else:
        clf = TFClassifier(kerasModel=json_model)
        if how == "setKerasModel":
            clf.setKerasModel(None)
        else:
            clf.setParams(kerasModel=None)
    assert clf.getKerasModel() == ""
    assert clf._training_spec().keras_model == ""


@pytest.fixture(scope="module")
def tiny_model(spark):
    return TFClassifier(epochs=1, hiddenLayers=[4], batchSize=8, seed=3).fit(_tiny(spark))


def test_the_model_setters_change_what_transform_does(spark, tiny_model, monkeypatch):
    from sparktf.inference import _udf

    df = _tiny(spark)
    plans = []
    apply_plan = _udf.apply_plan

    def recording(dataset, plan, handle, *args):
        plans.append(plan)
        return apply_plan(dataset, plan, handle, *args)

    monkeypatch.setattr(_udf, "apply_plan", recording)
    model = tiny_model.copy()
    plain = [r.prediction for r in model.transform(df).collect()]
    assert model.setPredictBatchSize(3) is model and model.setFreezeModel(True) is model
    frozen = [r.prediction for r in model.transform(df).collect()]
    assert [(p.batch_size, p.freeze) for p in plans] == [(1024, False), (3, True)]
    assert frozen == plain  # the same network, run as a frozen graph in batches of 3
    # thresholds (pyspark's setter) and an output column: a 0 threshold predicts its class
    model.setThresholds([1.0, 0.0]).setProbabilityCol("")
    skewed = model.transform(df)
    assert "probability" not in skewed.columns
    assert {r.prediction for r in skewed.collect()} == {1.0}
    assert tiny_model.getPredictBatchSize() == 1024  # the copy's setters left the original alone
