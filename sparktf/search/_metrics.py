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
    "BinaryClassificationEvaluator": ("areaUnderROC", "areaUnderPR"),
}


@dataclass(frozen=True)
class MetricSpec:
    """What a task computes: the metric's name, its direction, logLoss's clipping and the
    curve's ``numBins`` (Spark's down-sampling of the ROC and PR curves)."""

    name: str
    larger_better: bool
    eps: float = 1e-15
    num_bins: int = 1000


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
    bins = int(evaluator.getOrDefault("numBins")) if evaluator.hasParam("numBins") else 1000
    return MetricSpec(
        name=name, larger_better=bool(evaluator.isLargerBetter()), eps=eps, num_bins=bins
    )


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


def _curve_counts(positive: np.ndarray, scores: np.ndarray, num_bins: int):
    """Spark's ``BinaryClassificationMetrics`` counts: true and false positives at each distinct
    score taken as a threshold, highest first. With ``num_bins`` > 0 and at least twice as many
    distinct scores, runs of ``distinct // num_bins`` consecutive thresholds are merged into
    one, as Spark down-samples within one partition of its sorted scores."""
    order = np.argsort(-scores, kind="mergesort")
    ordered, hits = scores[order], positive[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    pos = np.add.reduceat(hits, starts)
    neg = np.diff(np.r_[starts, len(ordered)]) - pos
    grouping = len(starts) // num_bins if num_bins > 0 else 0
    if grouping >= 2:
        edges = np.arange(0, len(starts), grouping)
        pos, neg = np.add.reduceat(pos, edges), np.add.reduceat(neg, edges)
    return np.cumsum(pos), np.cumsum(neg)


def _trapezoids(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def _binary_area(spec: MetricSpec, y: np.ndarray, raw: np.ndarray) -> float:
    """The area under Spark's ROC or PR curve: ranked by ``rawPrediction[1]``, a row is
    positive when its label is > 0.5, rates of an empty class are 0, a precision with nothing
    predicted 1, and the PR curve starts at (0, its first precision)."""
    if len(y) == 0:
        return float("nan")
    tp, fp = _curve_counts(np.asarray(y, dtype=np.float64) > 0.5, raw[:, 1], spec.num_bins)
    positives, negatives = tp[-1], fp[-1]
    recall = tp / positives if positives else np.zeros_like(tp)
    if spec.name == "areaUnderROC":
        rate = fp / negatives if negatives else np.zeros_like(fp)
        return _trapezoids(np.r_[0.0, rate, 1.0], np.r_[0.0, recall, 1.0])
    precision = tp / (tp + fp)
    return _trapezoids(np.r_[0.0, recall], np.r_[precision[0], precision])


def score(spec: MetricSpec, y: np.ndarray, raw: np.ndarray, probabilities: np.ndarray) -> float:
    """The metric of a model's scores against the labels ``y``: ``raw`` (rows x classes, the
    ``rawPrediction`` of transform) for the binary metrics, ``probabilities`` for logLoss, and
    the prediction (argmax of the probabilities, as transform without thresholds) for the
    others, each as Spark's evaluator computes it from transform's output."""
    if spec.name in SUPPORTED["BinaryClassificationEvaluator"]:
        return _binary_area(spec, y, raw)
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
    raise ValueError(f"unknown metric {name!r}")


def worst_score(spec: MetricSpec, y: np.ndarray, num_classes: int) -> float:
    """The metric of a failed trial: every row predicted wrong with certainty, as the model of
    a failed trial scores in a Spark transform."""
    y = np.asarray(y).astype(np.int64)
    wrong = np.eye(num_classes)[(y + 1) % num_classes]
    return score(spec, y, wrong, wrong)
