"""The halving validators answer like pyspark's validators (sparktf issue 33): seed, metrics
that name the best map, NaN metrics, the model bytes a search keeps, parallelism, the saved
TrainValidationSplitModel layout, data above the broadcast limit and the epochs trained."""

from __future__ import annotations

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
