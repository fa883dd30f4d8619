"""TFClassifier from a pretrained network (baseModel) in MLlib's and sparktf's searches: a grid
over the fine-tuning Params in a CrossValidator, a halving search whose rung budget spans both
phases, and the halving search's refusal of fineTuneEpochs in its grid."""

from __future__ import annotations

import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from transfer_support import QUICK, _accuracy

from sparktf import TFClassifier
from sparktf.search import HalvingTrainValidationSplit

pytest_plugins = ("transfer_fixtures",)


def test_a_grid_over_trainable_layers_and_fine_tune_rate_fits_in_a_cross_validator(
    bases, quadrants
):
    pretrained, _ = bases
    clf = TFClassifier(baseModel=pretrained, fineTuneEpochs=1, **QUICK)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.trainableLayers, [0, -1])
        .addGrid(clf.fineTuneLearningRate, [1e-4, 1e-3])
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(estimator=clf, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2)
    model = cv.fit(quadrants[0])
    assert len(model.avgMetrics) == 4 and min(model.avgMetrics) > 0.3  # chance: 0.25
    assert len(model.bestModel.history["epochs"]["loss"]) == 2  # epochs + fineTuneEpochs
    assert model.bestModel.getTrainableLayers() in (0, -1)


def test_a_halving_search_over_fine_tuning_fits(bases, quadrants):
    pretrained, _ = bases
    clf = TFClassifier(baseModel=pretrained, fineTuneEpochs=2, **QUICK)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.trainableLayers, [0, 1])
        .addGrid(clf.fineTuneLearningRate, [1e-4, 1e-3])
        .build()
    )
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        factor=2,
        seed=3,
    )
    model = search.fit(quadrants[0])
    # the budget is epochs + fineTuneEpochs: the last rung's maps trained all three
    # rungs of 2 then 3 epochs: the first crosses into fine-tuning, the second continues it
    assert sorted(t["epochs"] for t in model.trials) == [2, 2, 3, 3]
    assert len(model.bestModel.history["epochs"]["loss"]) == 3
    assert _accuracy(model.bestModel, quadrants[1]) >= 0.8


def test_a_halving_search_refuses_fine_tune_epochs_in_its_grid(bases, quadrants):
    clf = TFClassifier(baseModel=bases[0], **QUICK)
    grid = ParamGridBuilder().addGrid(clf.fineTuneEpochs, [1, 2]).build()
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        factor=2,
    )
    with pytest.raises(ValueError, match=r"'fineTuneEpochs' is the budget the halving search"):
        search.fit(quadrants[0])
