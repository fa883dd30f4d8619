"""Successive-halving search for TFClassifier, as pyspark.ml validators.

:class:`HalvingCrossValidator` (k folds) and :class:`HalvingTrainValidationSplit` (one split by
``trainRatio``) take what ``CrossValidator`` and ``TrainValidationSplit`` take (``estimator``,
``estimatorParamMaps`` from ``ParamGridBuilder`` or :class:`~sparktf.ParamRandomBuilder`,
``evaluator``, ``seed``, ``collectSubModels``) and spend epochs in rungs: every map trains a few
epochs, the best ``1/factor`` by the evaluator's metric on held-out rows go on from their own
weights and optimizer state, and so on up to the estimator's ``epochs``. Every rung is one
Spark job of every surviving map times every fold. ``factor=1`` is the exhaustive search with
all folds in one job.

The fitted models are ``CrossValidatorModel`` / ``TrainValidationSplitModel`` subclasses:
``bestModel``, ``avgMetrics`` (``validationMetrics``, whose ``argmax`` names the best map: maps
dropped at an earlier rung get the worst value), ``stdMetrics``, ``subModels``, ``transform``,
``save``/``load``, :func:`~sparktf.tuning_report` and :func:`~sparktf.plot_sensitivity` work as
with pyspark's; ``trials`` holds where each map stopped (rung, epochs, seconds, failure, time
limit) and its metrics there and at every rung.
"""

from __future__ import annotations

from typing import Any

from pyspark.ml import Estimator, Model
from pyspark.ml.param import Params
from pyspark.ml.param.shared import HasCollectSubModels
from pyspark.ml.tuning import (
    CrossValidatorModel,
    TrainValidationSplitModel,
    _CrossValidatorParams,
    _TrainValidationSplitParams,
)
from pyspark.ml.util import MLReadable, MLWritable

from sparktf.param.declare import (
    Declared,
    FloatRange,
    IntRange,
    checked_values,
    declare_params,
    declare_stage,
)
from sparktf.search._driver import run_search
from sparktf.search._metrics import metric_spec
from sparktf.search._params import _HalvingParams, validator_params
from sparktf.search._results import SearchPlan

__all__ = [
    "HalvingCrossValidator",
    "HalvingCrossValidatorModel",
    "HalvingTrainValidationSplit",
    "HalvingTrainValidationSplitModel",
]


_NUMFOLDS = Declared("numFolds", default=3, check=IntRange(2), kind="int")
_TRAINRATIO = Declared(
    "trainRatio", default=0.75, check=FloatRange(0.0, 1.0, "neither"), kind="float"
)


_DATA_PARAMS = {
    "featuresCol",
    "labelCol",
    "validationIndicatorCol",
    "classCount",
    "inputShape",
    "maxBroadcastBytes",
    "stagingDir",
}


def _check_maps(stage: str, est: Any, maps: list[dict], factor: int) -> None:
    """Refuse param maps a search cannot train: another stage's Params, the epochs budget, the
    data Params, or a bad value (named by the Param's own check)."""
    tuned = {p.name for pm in maps for p in pm if p.parent == est.uid}
    foreign = {p.name for pm in maps for p in pm if p.parent != est.uid}
    if foreign:
        raise ValueError(
            f"{stage}: the param maps set Params of another stage ({sorted(foreign)}); "
            "they may only set the TFClassifier's own."
        )
    budget = sorted(tuned & {"epochs", "fineTuneEpochs"})  # epochs + fineTuneEpochs with a base
    if factor > 1 and budget:
        raise ValueError(
            f"{stage}: '{budget[0]}' is the budget the halving search spends (rung by rung up "
            "to the estimator's epochs, plus fineTuneEpochs with a baseModel); set it on the "
            "TFClassifier, not in the param maps (or use factor=1 for an exhaustive search)."
        )
    if tuned & _DATA_PARAMS:
        raise ValueError(
            f"{stage}: the param maps tune data Params ({sorted(tuned & _DATA_PARAMS)}); "
            "every trial of a search reads the same rows, so set them on the TFClassifier."
        )
    for pm in maps:
        est.copy(pm)._training_spec()  # a bad value raises now, naming the Param


class _SavedBySearch:
    """``write``/``read`` through the writer and reader of ``search._persistence`` a class names
    (the validators' and their models' differ)."""

    _writer, _reader = "SearchWriter", "SearchReader"

    def write(self):
        from sparktf.search import _persistence

        return getattr(_persistence, self._writer)(self)

    @classmethod
    def read(cls):
        from sparktf.search import _persistence

        return getattr(_persistence, cls._reader)(cls)


class _HalvingSearch(
    _SavedBySearch, Estimator, _HalvingParams, HasCollectSubModels, MLReadable, MLWritable
):
    """What both validators share: checks, the search, the fitted model."""

    _model_class: type = type(None)

    def _set(self, **kwargs: Any):
        # A None seed is refused, not ignored: ignoring it would keep the fixed default seed
        # (the same folds in every run) without a word.
        if "seed" in kwargs and kwargs["seed"] is None:
            raise TypeError(
                f"The 'seed' param of {type(self).__name__} must be an int. Got seed=None "
                "instead: sparktf's halving search has a fixed default seed so that its folds are "
                "the same in every process (a search can be repeated and resumed); for other "
                "folds, pass another int, e.g. seed=random.randrange(2**31)."
            )
        return super()._set(**kwargs)

    def _split(self) -> tuple[int, float]:
        raise NotImplementedError

    def _plan(self, est: Any, maps: list[dict], evaluator: Any) -> SearchPlan:
        """The checked search: every error a user can make is raised here, before any job."""
        from pyspark.ml import Pipeline

        from sparktf.classification import TFClassifier

        stage = type(self).__name__
        if isinstance(est, Pipeline):
            raise TypeError(
                f"{stage} trains a TFClassifier directly, not a Pipeline: it continues each "
                "trial's network from rung to rung, which other stages cannot do. Fit the "
                "feature stages first (features = Pipeline(stages=...).fit(df).transform(df)) "
                "and search the TFClassifier on their output."
            )
        if not isinstance(est, TFClassifier):
            raise TypeError(f"{stage} expects a TFClassifier estimator. Got {type(est).__name__}.")
        if not maps:
            raise ValueError(f"{stage}: estimatorParamMaps is empty; give at least one map.")
        checked = checked_values(self)
        factor, min_epochs = checked["factor"], checked["minEpochs"]
        _check_maps(stage, est, maps, factor)
        num_folds, train_ratio = self._split()
        return SearchPlan(
            stage=stage,
            num_folds=num_folds,
            train_ratio=train_ratio,
            seed=checked["seed"],
            factor=factor,
            min_epochs=min_epochs,
            metric=metric_spec(evaluator, stage),
            trial_timeout=checked["trialTimeout"] or None,
            search_timeout=checked["searchTimeout"] or None,
            checkpoint_dir=self.getCheckpointDir() or None,
            refit=bool(self.getRefit()),
            sub_models=bool(self.getCollectSubModels()),
            parallelism=checked_values(self, ["parallelism"])["parallelism"],
        )

    def _fit(self, dataset):
        from sparktf.training._trials import varying_labels

        est = self.getEstimator()
        maps = list(self.getEstimatorParamMaps())
        evaluator = self.getEvaluator()
        plan = self._plan(est, maps, evaluator)
        labels = varying_labels(maps)
        tracker = None
        if self.getMlflowExperiment():
            from sparktf.tracking import SearchTracker

            tracker = SearchTracker(self.getMlflowExperiment(), plan.stage, maps, labels)
        try:
            model = self._search(est, dataset, maps, evaluator, plan, labels, tracker)
        except BaseException as exc:
            if tracker is not None:
                tracker.failed(exc)
            raise
        if tracker is not None:
            tracker.finish(model, dataset, maps[model.searchSummary["best"]])
        return model

    def _search(self, est, dataset, maps, evaluator, plan, labels, tracker):
        """The search and its fitted model (see :meth:`_fit`)."""
        outcome = run_search(est, dataset, maps, evaluator, plan, labels, tracker)
        best_map = maps[outcome.best]
        best = outcome.maps[outcome.best]
        if self.getRefit():
            best_model = est.fit(dataset, best_map)
        else:
            best_model = est._model_from_result(best.trials[0], outcome.data, best_map)
        sub_models = None
        if self.getCollectSubModels():
            sub_models = [
                [
                    est._model_from_result(m.trials[f], outcome.data, maps[i])
                    for i, m in enumerate(outcome.maps)
                ]
                for f in range(plan.folds)
            ]
        model = self._model_class._from_search(best_model, outcome, sub_models)
        model.trials = [m.record() for m in outcome.maps]
        model.searchSummary = {
            "rungs": [{"epochs": r.epochs, "maps": r.maps} for r in outcome.rungs],
            "best": outcome.best,
            "trialsTrained": outcome.trained,
            "taskSeconds": outcome.task_seconds,
            "jobs": outcome.jobs,
        }
        return self._copyValues(model)

    def copy(self, extra: dict | None = None):
        extra = dict(extra or {})
        new = Params.copy(self, extra)
        if self.isSet(self.estimator):
            new.setEstimator(self.getEstimator().copy(extra))
        if self.isSet(self.evaluator):
            new.setEvaluator(self.getEvaluator().copy(extra))
        return new


class _SearchModel(_SavedBySearch, _HalvingParams):
    """What both fitted models add to pyspark's: ``trials`` and ``searchSummary``."""

    trials: list[dict[str, Any]]
    searchSummary: dict[str, Any]

    _writer, _reader = "SearchModelWriter", "SearchModelReader"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)  # pyspark's model: bestModel, the metrics, subModels
        self.trials = []
        self.searchSummary = {}

    @classmethod
    def _from_search(cls, best_model, outcome, sub_models):
        raise NotImplementedError

    def _with_search(self, new, extra: dict):
        """``new``, a copy of this model's pyspark parts, with its trials, summary and Params."""
        new.trials, new.searchSummary = list(self.trials), dict(self.searchSummary)
        return self._copyValues(new, extra=extra)


class HalvingCrossValidatorModel(_SearchModel, CrossValidatorModel):
    """A fitted :class:`HalvingCrossValidator`: a ``CrossValidatorModel`` whose ``avgMetrics``
    name the best map by ``argmax`` (``argmin`` when smaller is better), as pyspark's do: the
    maps the best was chosen among (its rung) keep their mean over folds, every other map gets
    the worst value (-inf or +inf) and a NaN ``stdMetrics``. ``trials`` holds each map's own
    metrics: ``metric`` and ``std`` at its last rung, ``rungMetrics`` at every rung."""

    def __init__(
        self,
        bestModel: Model,
        avgMetrics: list[float] | None = None,
        subModels: list[list[Model]] | None = None,
        stdMetrics: list[float] | None = None,
    ) -> None:
        super().__init__(bestModel, avgMetrics, subModels, stdMetrics)

    @classmethod
    def _from_search(cls, best_model, outcome, sub_models):
        metrics, stds = outcome.validator_metrics()
        return cls(best_model, avgMetrics=metrics, subModels=sub_models, stdMetrics=stds)

    def copy(self, extra: dict | None = None):
        extra = dict(extra or {})
        subs = None
        if self.subModels is not None:
            subs = [[m.copy() for m in fold] for fold in self.subModels]
        new = type(self)(self.bestModel.copy(extra), list(self.avgMetrics), subs)
        new.stdMetrics = list(self.stdMetrics)
        return self._with_search(new, extra)


class HalvingTrainValidationSplitModel(_SearchModel, TrainValidationSplitModel):
    """A fitted :class:`HalvingTrainValidationSplit`: a ``TrainValidationSplitModel`` whose
    ``validationMetrics`` name the best map by ``argmax`` (``argmin``), as pyspark's do: maps
    that stopped at an earlier rung (or failed) get the worst value; ``trials`` holds each
    map's own metrics (``metric`` at its last rung, ``rungMetrics`` at every rung)."""

    def __init__(
        self,
        bestModel: Model,
        validationMetrics: list[float] | None = None,
        subModels: list[Model] | None = None,
    ) -> None:
        super().__init__(bestModel, validationMetrics, subModels)

    @classmethod
    def _from_search(cls, best_model, outcome, sub_models):
        return cls(
            best_model,
            validationMetrics=outcome.validator_metrics()[0],
            subModels=sub_models[0] if sub_models else None,
        )

    def copy(self, extra: dict | None = None):
        extra = dict(extra or {})
        subs = [m.copy() for m in self.subModels] if self.subModels is not None else None
        new = type(self)(self.bestModel.copy(extra), list(self.validationMetrics), subs)
        return self._with_search(new, extra)


@declare_stage
@declare_params(*validator_params(_NUMFOLDS))
class HalvingCrossValidator(_HalvingSearch, _CrossValidatorParams):
    """Successive halving over k folds, every fold of a rung in one Spark job.

    >>> from pyspark.ml.tuning import ParamGridBuilder
    >>> from sparktf import TFClassifier
    >>> from sparktf.search import HalvingCrossValidator
    >>> clf = TFClassifier(epochs=9)
    >>> grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-3, 3e-3, 1e-2]).build()
    >>> search = HalvingCrossValidator(estimator=clf, estimatorParamMaps=grid, numFolds=3)
    >>> search.getFactor(), search.getNumFolds()
    (3, 3)
    """

    _model_class = HalvingCrossValidatorModel

    def _split(self) -> tuple[int, float]:
        if self.isSet(self.foldCol) and self.getFoldCol():
            raise ValueError("HalvingCrossValidator draws its own folds; foldCol is not supported.")
        return checked_values(self, ["numFolds"])["numFolds"], 0.0


@declare_stage
@declare_params(*validator_params(_TRAINRATIO))
class HalvingTrainValidationSplit(_HalvingSearch, _TrainValidationSplitParams):
    """Successive halving on one train/validation split (``trainRatio`` of the rows train)."""

    _model_class = HalvingTrainValidationSplitModel

    def _split(self) -> tuple[int, float]:
        return 0, checked_values(self, ["trainRatio"])["trainRatio"]
