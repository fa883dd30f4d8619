"""A failed trial's model scores worst in its validator's evaluation, and raises anywhere else."""

from __future__ import annotations

import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

from sparktf import TFClassifier
from sparktf.errors import TrainingError

FAST = {"epochs": 2, "hiddenLayers": [8], "batchSize": 8, "learningRate": 0.05}
OUTSIDE = r"its training failed with: .*must output 2 scores.* scores worst only in its validator"


def _data(spark, rows: int = 48):
    return spark.createDataFrame(
        [
            (Vectors.dense([float(i % 2), 1.0 - i % 2, (i % 5) / 5]), float(i % 2))
            for i in range(rows)
        ],
        ["features", "label"],
    )


def _three_outputs() -> str:
    """A user architecture that fails inside its task (3 outputs for 2 classes)."""
    import keras

    return keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(3)]).to_json()


@pytest.mark.parametrize("validator", [CrossValidator, TrainValidationSplit])
def test_validators_rank_a_failed_trial_last_but_its_kept_model_refuses_to_predict(
    spark, validator
):
    df = _data(spark)
    clf = TFClassifier(**FAST)
    grid = [{clf.kerasModel: _three_outputs()}, {clf.learningRate: 0.05}]
    split = {"numFolds": 2} if validator is CrossValidator else {"trainRatio": 0.5}
    fitted = validator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        collectSubModels=True,
        parallelism=2,
        seed=1,
        **split,
    ).fit(df)
    metrics = fitted.avgMetrics if validator is CrossValidator else fitted.validationMetrics
    assert metrics[0] == 0.0 and metrics[1] > 0.0  # the evaluation scored it worst
    assert fitted.bestModel.hasModel
    failed = fitted.subModels[0][0] if validator is CrossValidator else fitted.subModels[0]
    assert not failed.hasModel
    with pytest.raises(TrainingError, match=OUTSIDE):
        failed.transform(df)


def test_a_failed_trial_is_evaluated_once_after_fit_multiple_hands_it_out(spark):
    df = _data(spark)
    clf = TFClassifier(**FAST)
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    iterator = clf.fitMultiple(df, [{clf.kerasModel: _three_outputs()}, {}])
    index, failed = next(iterator)
    assert index == 0 and not failed.hasModel
    # what pyspark's validators do with each model they take: transform, evaluate, at once
    assert evaluator.evaluate(failed.transform(df, {clf.learningRate: 0.05})) == 0.0
    with pytest.raises(TrainingError, match=OUTSIDE):
        failed.transform(df)  # a second use is the user's own
    with pytest.raises(TrainingError, match=OUTSIDE):
        failed.copy().transform(df)
