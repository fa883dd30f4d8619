"""Saving and loading the halving validators and their fitted models.

The folders are pyspark's own validator layout (``metadata/``, ``estimator/``, ``evaluator/``,
``bestModel/``, ``subModels/``: ``fold<f>/<i>`` for k folds, ``<i>`` for a split), written with
pyspark's shared validator writer, so every Param map, the estimator and the evaluator
round-trip as they do for ``CrossValidator``. The model's metadata also holds ``trials``
(where each map stopped, its metrics) and ``searchSummary``.
"""

from __future__ import annotations

import os
from typing import Any

from pyspark.ml.tuning import _ValidatorSharedReadWrite
from pyspark.ml.util import DefaultParamsReader

from sparktf.persistence import _Reader, _Writer

__all__ = ["SearchModelReader", "SearchModelWriter", "SearchReader", "SearchWriter"]


def _shared_load(path: str, spark, metadata: dict[str, Any]):
    """pyspark's shared validator reader. It reads the values of a param map as written by its
    Python writer only for classes under ``pyspark.ml.`` (else as the JVM's writer wrote them),
    so it is shown the metadata under the name of the pyspark validator these folders mirror."""
    mirrored = {**metadata, "class": "pyspark.ml.tuning.CrossValidator"}
    _, estimator, evaluator, maps = _ValidatorSharedReadWrite.load(path, spark, mirrored)
    return metadata, estimator, evaluator, maps


class SearchWriter(_Writer):
    """Writes a halving validator (its Params, estimator, evaluator and param maps)."""

    def saveImpl(self, path: str) -> None:
        _ValidatorSharedReadWrite.validateParams(self.instance)
        _ValidatorSharedReadWrite.saveImpl(path, self.instance, self.sparkSession)


class SearchReader(_Reader):
    """Reads a halving validator saved by :class:`SearchWriter`."""

    def load(self, path: str):
        metadata = self.metadata(path, checked=False)
        metadata, estimator, evaluator, maps = _shared_load(path, self.sparkSession, metadata)
        stage = self.cls(estimator=estimator, estimatorParamMaps=maps, evaluator=evaluator)
        stage._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(stage, metadata, skipParams=["estimatorParamMaps"])
        return stage


def _folds(instance: Any) -> list[list[Any]] | None:
    """The sub-models by fold (one fold for a train/validation split)."""
    subs = instance.subModels
    if subs is None:
        return None
    return subs if hasattr(instance, "avgMetrics") else [subs]


class SearchModelWriter(_Writer):
    """Writes a fitted halving validator: pyspark's validator layout plus the trials."""

    def saveImpl(self, path: str) -> None:
        model = self.instance
        _ValidatorSharedReadWrite.validateParams(model)
        persist = _ValidatorSharedReadWrite.getValidatorModelWriterPersistSubModelsParam(self)
        folds = _folds(model)
        if persist and folds is None:
            raise ValueError(
                "This model has no sub-models to persist (fit with collectSubModels=True)."
            )
        extra: dict[str, Any] = {
            "persistSubModels": persist,
            "trials": model.trials,
            "searchSummary": model.searchSummary,
        }
        if hasattr(model, "avgMetrics"):
            extra["avgMetrics"] = list(model.avgMetrics)
            extra["stdMetrics"] = list(model.stdMetrics)
        else:
            extra["validationMetrics"] = list(model.validationMetrics)
        _ValidatorSharedReadWrite.saveImpl(path, model, self.sparkSession, extraMetadata=extra)
        model.bestModel.write().session(self.sparkSession).save(os.path.join(path, "bestModel"))
        if persist:
            for f, fold in enumerate(folds or []):
                for i, sub in enumerate(fold):
                    sub_path = _sub_model_path(path, model, f, i)
                    sub.write().session(self.sparkSession).save(sub_path)


def _sub_model_path(path: str, model: Any, fold: int, index: int) -> str:
    """pyspark's layout: ``subModels/fold<f>/<i>`` for a CrossValidatorModel,
    ``subModels/<i>`` for a TrainValidationSplitModel (one split)."""
    if hasattr(model, "avgMetrics"):
        return os.path.join(path, "subModels", f"fold{fold}", str(index))
    return os.path.join(path, "subModels", str(index))


def _fold_count(metadata: dict[str, Any]) -> int:
    if "avgMetrics" not in metadata:
        return 1
    params = {**metadata.get("defaultParamMap", {}), **metadata["paramMap"]}
    return int(params["numFolds"])


def _load_sub_model(path: str, spark, metadata: dict[str, Any], fold: int, index: int):
    """A sub-model in pyspark's layout; a split's saved before sparktf followed it (under
    ``subModels/fold0/``) is read from there."""
    if "avgMetrics" in metadata:
        where = os.path.join(path, "subModels", f"fold{fold}", str(index))
        return DefaultParamsReader.loadParamsInstance(where, spark)
    try:
        where = os.path.join(path, "subModels", str(index))
        return DefaultParamsReader.loadParamsInstance(where, spark)
    except Exception:
        where = os.path.join(path, "subModels", "fold0", str(index))
        return DefaultParamsReader.loadParamsInstance(where, spark)


class SearchModelReader(_Reader):
    """Reads a fitted halving validator saved by :class:`SearchModelWriter`."""

    def load(self, path: str):
        spark = self.sparkSession
        metadata = self.metadata(path, checked=False)
        metadata, estimator, evaluator, maps = _shared_load(path, spark, metadata)
        best = DefaultParamsReader.loadParamsInstance(os.path.join(path, "bestModel"), spark)
        folds = None
        if metadata.get("persistSubModels"):
            folds = [
                [_load_sub_model(path, spark, metadata, f, i) for i in range(len(maps))]
                for f in range(_fold_count(metadata))
            ]
        if "avgMetrics" in metadata:
            model = self.cls(best, metadata["avgMetrics"], folds, metadata.get("stdMetrics"))
        else:
            model = self.cls(best, metadata["validationMetrics"], folds[0] if folds else None)
        model.trials = list(metadata.get("trials") or [])
        model.searchSummary = dict(metadata.get("searchSummary") or {})
        model._resetUid(metadata["uid"])
        model.set(model.estimator, estimator)
        model.set(model.estimatorParamMaps, maps)
        model.set(model.evaluator, evaluator)
        DefaultParamsReader.getAndSetParams(model, metadata, skipParams=["estimatorParamMaps"])
        return model
