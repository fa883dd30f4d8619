"""A classifier's head: from a network's outputs to raw scores, probabilities and predictions.

Used where a TFClassificationModel predicts: in the transform's UDF, which the transformer's
engine runs (:class:`sparktf.inference._plan.ScoresPlan`), and on the driver by its
single-row ``predict*`` methods.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_thresholds", "check_scores", "check_thresholds", "raw_and_probability"]


def raw_and_probability(out: np.ndarray, outputs_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores and class probabilities of a batch of network outputs.

    The raw scores are row-centred logits (each row minus its mean), as MLlib's
    ``LogisticRegression`` gives ``[-m, m]`` for two classes: the softmax of a row is
    unchanged, and with two classes ``raw[1]`` is monotone in ``P(1)``, the score Spark's
    ``BinaryClassificationEvaluator`` ranks by.

    Logits go through a softmax that is safe for infinities: a row with ``+inf`` logits gives
    its probability to those classes (split evenly when several are ``+inf``) and ``-inf``
    logits get 0. Probabilities (a network ending in a softmax) are clipped at 0 and each row
    divided by its sum, as Keras' cross-entropy reads them. Where there are no finite logits to
    centre (probabilities, and rows with an infinite logit), the raw scores are the centred
    log-probabilities, a probability of 0 counting as 1e-300. A row with NaN scores, with
    ``-inf`` for every class, or with no positive probability has no probability:
    :func:`check_scores` raises for it.
    """
    check_scores(out, outputs_logits)
    if not outputs_logits:
        prob = np.clip(out, 0.0, None)
        prob = prob / prob.sum(axis=1, keepdims=True)
        return _centred_log(prob), prob
    top = out.max(axis=1, keepdims=True)
    infinite = np.isposinf(top[:, 0])
    with np.errstate(invalid="ignore", over="ignore"):
        exp = np.exp(out - top)
    if infinite.any():
        exp[infinite] = np.isposinf(out[infinite])
    prob = exp / exp.sum(axis=1, keepdims=True)
    finite = np.isfinite(out).all(axis=1)
    with np.errstate(invalid="ignore"):
        raw = out - out.mean(axis=1, keepdims=True)
    if not finite.all():
        raw[~finite] = _centred_log(prob[~finite])
    return raw, prob


def _centred_log(prob: np.ndarray) -> np.ndarray:
    """Row-centred log-probabilities (a probability of 0 counted as 1e-300)."""
    log = np.log(np.clip(prob, 1e-300, None))
    return log - log.mean(axis=1, keepdims=True)


def check_scores(out: np.ndarray, outputs_logits: bool) -> None:
    """Raise a ValueError naming the rows whose scores give no probability (see above)."""
    bad = np.isnan(out).any(axis=1)
    if outputs_logits and out.shape[1]:
        bad |= np.isneginf(out).all(axis=1)
        what = "NaN, or -inf for every class"
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            total = np.clip(out, 0.0, None).sum(axis=1)
        bad |= ~np.isfinite(total) | (total <= 0)
        what = "NaN, inf, or no positive probability"
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    listed = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    positions = "position" + ("s" if len(rows) > 1 else "")
    raise ValueError(
        f"TFClassificationModel: the network produced non-finite scores ({what}) "
        f"for {len(rows)} of {len(out)} rows in a batch (at {positions} {listed}), "
        "so they have no class probabilities. Check those rows' features for NaN, "
        "inf or values far outside the training range, and the network for weights that "
        "overflow."
    )


def check_thresholds(
    thresholds: list[float], num_classes: int | None, stage: str = "TFClassificationModel"
) -> list[float]:
    """``thresholds`` if MLlib would take them, else a ValueError saying why.

    MLlib's rule (``HasThresholds`` in Scala): every value >= 0 (so no NaN), at most one of them
    0, and, where the model is known, one value per class (``num_classes``; None: not checked).
    """
    values = [float(t) for t in thresholds]
    negative = [t for t in values if not t >= 0]
    if negative:
        raise ValueError(
            f"The 'thresholds' param of {stage} must hold values >= 0 (at most one of them 0), "
            f"as MLlib requires. Got {values} instead, with negative or NaN value(s) {negative}."
        )
    zeros = values.count(0.0)
    if zeros > 1:
        raise ValueError(
            f"The 'thresholds' param of {stage} must have at most one value equal to 0 (the "
            "class of a 0 threshold is predicted whenever its probability is above 0), as MLlib "
            f"requires. Got {zeros} zeros in {values} instead."
        )
    if num_classes is not None and len(values) != num_classes:
        raise ValueError(
            f"The 'thresholds' param of {stage} must have one value per "
            f"class ({num_classes}). Got {len(values)} values instead."
        )
    return values


def apply_thresholds(prob: np.ndarray, thresholds: list[float] | None) -> np.ndarray:
    if thresholds is None:
        return prob.argmax(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = prob / np.asarray(thresholds, dtype=np.float64)
    return np.nan_to_num(scaled, nan=-np.inf).argmax(axis=1).astype(np.float64)
