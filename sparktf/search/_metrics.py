"""The evaluator's metric, computed inside a training task on the rows held out of its training.

A search scores hundreds of trainings; a Spark transform and an evaluator job per training
would cost more than many of the trainings. So the driver turns the validator's evaluator into
a small :class:`MetricSpec` (checked there: only metrics computed here exactly as Spark does
are accepted), and each task scores its model on its held-out rows with :func:`score`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SUPPORTED", "MetricSpec", "metric_spec", "score", "worst_score"]

SUPPORTED = {
    "MulticlassClassificationEvaluator": (
        "accuracy",
        "f1",
        "weightedPrecision",
        "weightedRecall",
        "weightedTruePositiveRate",
        "hammingLoss",
        "logLoss",
    ),
    "BinaryClassificationEvaluator": ("areaUnderROC",),
}


@dataclass(frozen=True)
class MetricSpec:
    """What a task computes: the metric's name, its direction and logLoss's clipping."""

    name: str
    larger_better: bool
    eps: float = 1e-15


def metric_spec(evaluator: Any, stage: str) -> MetricSpec:
    """The :class:`MetricSpec` of a pyspark evaluator; a clear error for one not computed here."""
    kind = type(evaluator).__name__
    names = SUPPORTED.get(kind)
    if names is None:
        raise TypeError(
            f"{stage} scores held-out rows inside its training tasks and computes the metrics "
            f"of {' and '.join(SUPPORTED)} there. Got a {kind} instead."
        )
    name = evaluator.getMetricName()
    if name not in names:
        raise ValueError(
            f"{stage}: the {kind} metric {name!r} is not computed in training tasks; use one "
            f"of {list(names)}."
        )
    if evaluator.hasParam("weightCol") and evaluator.isSet("weightCol"):
        raise ValueError(f"{stage}: an evaluator with weightCol set is not supported.")
    eps = float(evaluator.getOrDefault("eps")) if evaluator.hasParam("eps") else 1e-15
    return MetricSpec(name=name, larger_better=bool(evaluator.isLargerBetter()), eps=eps)


def _weighted(y: np.ndarray, pred: np.ndarray, which: str) -> float:
    """Spark's weighted precision, recall or F1: per-label values weighted by label counts."""
    labels, counts = np.unique(y, return_counts=True)
    total = 0.0
    for label, count in zip(labels, counts, strict=True):
        tp = float(np.sum((pred == label) & (y == label)))
        predicted = float(np.sum(pred == label))
        precision = tp / predicted if predicted else 0.0
        recall = tp / count
        if which == "precision":
            value = precision
        elif which == "recall":
            value = recall
        else:
            value = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += value * count
    return total / len(y)


def _area_under_roc(y: np.ndarray, positive: np.ndarray) -> float:
    """The ROC area by ranks (ties share their mean rank), as Spark's curve gives it."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(positive, kind="mergesort")
    ranks = np.empty(len(positive), dtype=float)
    sorted_scores = positive[order]
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(spec: MetricSpec, y: np.ndarray, probabilities: np.ndarray) -> float:
    """The metric of ``probabilities`` (rows x classes) against the labels ``y``."""
    y = np.asarray(y).astype(np.int64)
    pred = np.argmax(probabilities, axis=1)
    name = spec.name
    if name == "accuracy":
        return float(np.mean(pred == y))
    if name == "hammingLoss":
        return float(np.mean(pred != y))
    if name in ("weightedRecall", "weightedTruePositiveRate"):
        return _weighted(y, pred, "recall")
    if name == "weightedPrecision":
        return _weighted(y, pred, "precision")
    if name == "f1":
        return _weighted(y, pred, "f1")
    if name == "logLoss":
        picked = probabilities[np.arange(len(y)), y]
        return float(-np.mean(np.log(np.clip(picked, spec.eps, 1 - spec.eps))))
    if name == "areaUnderROC":
        return _area_under_roc(y, probabilities[:, 1] if probabilities.shape[1] > 1 else pred)
    raise ValueError(f"unknown metric {name!r}")


def worst_score(spec: MetricSpec, y: np.ndarray, num_classes: int) -> float:
    """The metric of a failed trial: every row predicted wrong with certainty, as the model of
    a failed trial scores in a Spark transform."""
    y = np.asarray(y).astype(np.int64)
    wrong = np.eye(num_classes)[(y + 1) % num_classes]
    return score(spec, y, wrong)
