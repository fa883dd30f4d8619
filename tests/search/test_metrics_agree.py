"""The halving search's in-task metrics equal Spark's evaluators on the same predictions, and a
binary model's rawPrediction ranks rows as its probabilities do."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors

from sparktf import TFClassifier
from sparktf.inference._scoring import raw_and_probability
from sparktf.search._metrics import SUPPORTED, metric_spec, score


def _predictions(rows: int, classes: int, seed: int, decimals: int | None = 1):
    """Labels and transform's columns for random logits; rounding the logits makes ties (in
    the scores and in the argmax)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    logits = rng.normal(0.0, 1.5, (rows, classes)) + 0.8 * np.eye(classes)[y]
    logits[:, 0] += rng.normal(0.0, 2.0, rows)  # a common offset a free logit would carry
    if decimals is not None:
        logits = np.round(logits, decimals)
    raw, prob = raw_and_probability(logits, True)
    return y, raw, prob


def _frame(spark, y, raw, prob, partitions: int = 3):
    rows = [
        (float(label), Vectors.dense(r.tolist()), Vectors.dense(p.tolist()), float(p.argmax()))
        for label, r, p in zip(y, raw, prob, strict=True)
    ]
    df = spark.createDataFrame(rows, ["label", "rawPrediction", "probability", "prediction"])
    return df.repartition(partitions) if partitions > 1 else df.coalesce(1)


CASES = {  # name: (rows, classes, seed, decimals, partitions)
    "binary with ties": (300, 2, 1, 1, 3),
    "three classes with ties": (300, 3, 2, 1, 3),
    "binary, one class only": (50, 1, 3, 1, 2),
    "binary, binned curve": (4500, 2, 4, None, 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_in_task_metrics_equal_sparks_evaluators(spark, case):
    rows, classes, seed, decimals, partitions = CASES[case]
    y, raw, prob = _predictions(rows, classes, seed, decimals)
    if classes == 1:  # every label 0, with two scores per row
        y, raw, prob = _predictions(rows, 2, seed, decimals)
        y = np.zeros_like(y)
    df = _frame(spark, y, raw, prob, partitions).cache()
    evaluators = [BinaryClassificationEvaluator(metricName=m) for m in SUPPORTED[
        "BinaryClassificationEvaluator"]]  # fmt: skip
    if case != "binary, binned curve":
        evaluators += [
            MulticlassClassificationEvaluator(metricName=m)
            for m in SUPPORTED["MulticlassClassificationEvaluator"]
        ]
    for evaluator in evaluators:
        name = evaluator.getMetricName()
        spec = metric_spec(evaluator, "test")
        in_task = score(spec, y, raw, prob)
        assert in_task == pytest.approx(evaluator.evaluate(df), abs=1e-6), (case, name)
    df.unpersist()


def _noisy_binary(spark, rows: int = 400, seed: int = 8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    x = rng.normal(0.0, 1.0, (rows, 10)) + 0.5 * y[:, None] * np.linspace(-1, 1, 10)
    data = [(Vectors.dense(f.tolist()), float(label)) for f, label in zip(x, y, strict=True)]
    return spark.createDataFrame(data, ["features", "label"]).cache()


def test_sparks_binary_auc_on_transform_is_the_auc_of_the_probabilities(spark):
    from sklearn.metrics import roc_auc_score

    df = _noisy_binary(spark)
    model = TFClassifier(hiddenLayers=[16], epochs=2, learningRate=0.01, seed=4).fit(df)
    out = model.transform(df).select("label", "rawPrediction", "probability").collect()
    y = np.array([r.label for r in out])
    raw = np.array([r.rawPrediction.toArray() for r in out])
    prob = np.array([r.probability.toArray() for r in out])
    expected = roc_auc_score(y, prob[:, 1])
    assert 0.55 < expected < 0.99  # a ranking with something to get wrong
    spark_auc = BinaryClassificationEvaluator().evaluate(model.transform(df))
    assert spark_auc == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(raw.sum(axis=1), 0.0, atol=1e-9)  # row-centred logits
    np.testing.assert_allclose(raw[:, 1], -raw[:, 0])  # MLlib's [-m, m]
