"""What the tuning_report and plot_sensitivity tests (test_tuning_*.py) share: validator models
made by hand with the trials a TFClassifier records, and how a written PNG is read."""

from __future__ import annotations

import struct

from pyspark.ml.tuning import CrossValidatorModel

from sparktf.classification import TFClassificationModel
from sparktf.training._book import TrialRun


def _cv_model(
    estimator, maps, metrics, stds=None, evaluator=None, folds=2, sub_models=None, best=None
):
    model = CrossValidatorModel(best, list(metrics), sub_models, stds)
    model._set(estimatorParamMaps=maps, numFolds=folds)
    if estimator is not None:
        model._set(estimator=estimator)
    if evaluator is not None:
        model._set(evaluator=evaluator)
    return model


def _run(maps, seconds, errors=None, grid=True, extra=None):
    """Trials as a TFClassifier writes them: one fitMultiple call (grid), or single fits."""
    errors = errors or [None] * len(maps)
    results = [
        {"seconds": s, "error": e, "history": {"loss": [1.0, 0.5]}}
        for s, e in zip(seconds, errors, strict=True)
    ]
    if grid:
        return [TrialRun.of(True, maps, results)]
    pairs = zip(maps, results, strict=True)
    return [TrialRun.of(False, [{**m, **(extra or {})}], [r]) for m, r in pairs]


def _refit(clf, *runs):
    """A validator's refit of ``clf``, keeping the runs of its search as a refit is given them."""
    model = TFClassificationModel._create(b"weights", 4, 3, True, {"seconds": 1.0, "error": None})
    model._keep_search({"estimator": clf.uid, "runs": [r.to_json() for r in runs]})
    return model


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])
