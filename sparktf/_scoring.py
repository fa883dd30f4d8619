"""What runs on the executors when a TFClassificationModel transforms a DataFrame.

:func:`predict_udf` builds the pandas UDF: the model's bytes arrive through
:func:`sparktf._spark.share`, are loaded once per Python worker
(:data:`sparktf._loading.MODEL_CACHE`) and applied to Arrow batches of feature arrays in
slices of ``predictBatchSize`` rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import types as T

__all__ = [
    "OUT_SCHEMA",
    "apply_thresholds",
    "check_scores",
    "predict_batch",
    "predict_udf",
    "raw_and_probability",
]


def predict_udf(
    shared, key: str, logits: bool, num_features: int, batch: int, thresholds: list[float] | None
):
    """The pandas UDF scoring a column of feature arrays into the ``OUT_SCHEMA`` struct."""
    from pyspark.sql.functions import pandas_udf

    from sparktf._loading import unsafe_loading_allowed

    # Decided on the driver; a model loaded with the opt-in is cached under its own key.
    safe = not unsafe_loading_allowed()
    cache_key = key if safe else f"{key}|unsafe"

    @pandas_udf(OUT_SCHEMA)
    def predict(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        from sparktf._loading import MODEL_CACHE, load_keras_bytes

        model = MODEL_CACHE.get(cache_key, lambda: load_keras_bytes(shared.value, safe_mode=safe))
        for series in batches:
            yield pd.DataFrame(
                predict_batch(model, series, num_features, batch, logits, thresholds)
            )

    return predict


OUT_SCHEMA = T.StructType(
    [
        T.StructField("raw", T.ArrayType(T.DoubleType())),
        T.StructField("probability", T.ArrayType(T.DoubleType())),
        T.StructField("prediction", T.DoubleType()),
    ]
)


def raw_and_probability(out: np.ndarray, outputs_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores and class probabilities of a batch of network outputs.

    Logits go through a softmax that is safe for infinities: a row with ``+inf`` logits gives
    its probability to those classes (split evenly when several are ``+inf``) and ``-inf``
    logits get 0, while the raw scores keep the infinities. A row with NaN scores, or with
    ``-inf`` for every class, has no probability: :func:`check_scores` raises for it.
    """
    check_scores(out, outputs_logits)
    if outputs_logits:
        top = out.max(axis=1, keepdims=True)
        infinite = np.isposinf(top[:, 0])
        with np.errstate(invalid="ignore", over="ignore"):
            exp = np.exp(out - top)
        if infinite.any():
            exp[infinite] = np.isposinf(out[infinite])
        return out, exp / exp.sum(axis=1, keepdims=True)
    prob = np.clip(out, 0.0, 1.0)
    return np.log(np.clip(prob, 1e-300, None)), prob


def check_scores(out: np.ndarray, outputs_logits: bool) -> None:
    """Raise a ValueError naming the rows whose scores give no probability (see above)."""
    bad = np.isnan(out).any(axis=1)
    if outputs_logits and out.shape[1]:
        bad |= np.isneginf(out).all(axis=1)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    listed = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    positions = "position" + ("s" if len(rows) > 1 else "")
    raise ValueError(
        f"TFClassificationModel: the network produced non-finite scores (NaN, or -inf for "
        f"every class) for {len(rows)} of {len(out)} rows in a batch (at {positions} {listed}), "
        "so they have no class probabilities. Check those rows' features for NaN, "
        "inf or values far outside the training range, and the network for weights that "
        "overflow."
    )


def apply_thresholds(prob: np.ndarray, thresholds: list[float] | None) -> np.ndarray:
    if thresholds is None:
        return prob.argmax(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = prob / np.asarray(thresholds, dtype=np.float64)
    return np.nan_to_num(scaled, nan=-np.inf).argmax(axis=1).astype(np.float64)


def predict_batch(
    model, series, num_features: int, batch: int, logits: bool, thresholds: list[float] | None
) -> dict:
    """Predict one Arrow batch of feature arrays with a loaded Keras model."""
    n = len(series)
    if n == 0:
        return {"raw": [], "probability": [], "prediction": []}
    values = series.to_numpy()
    nulls = [i for i, v in enumerate(values) if v is None]
    if nulls:
        raise ValueError(
            f"TFClassificationModel got a null feature vector ({len(nulls)} of {n} rows in a "
            "batch); drop or impute nulls before transform."
        )
    lengths = {len(v) for v in values}
    if lengths != {num_features}:
        raise ValueError(
            f"TFClassificationModel expects feature vectors of length {num_features}. Got "
            f"length(s) {sorted(lengths)} instead."
        )
    x = np.stack(values).astype(np.float32, copy=False)
    # A direct call: no tf.function is traced per model, batch shape or worker.
    chunks = [model(x[i : i + batch], training=False) for i in range(0, n, batch)]
    out = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
    raw, prob = raw_and_probability(out, logits)
    return {
        "raw": list(raw),
        "probability": list(prob),
        "prediction": apply_thresholds(prob, thresholds),
    }
