"""What every MLflow run of sparktf needs: MLflow itself (imported only here, only when asked
for), the experiment, a guard that turns a tracking failure into one warning, and the
conversion of a trial's Params and per-epoch history into MLflow's params and metrics."""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger("sparktf.tracking")

__all__ = [
    "TrackingGuard",
    "active_run_id",
    "experiment_id",
    "history_metrics",
    "import_mlflow",
    "param_values",
]

# MLflow keeps a param value of at most 6000 characters; sparktf keeps far less, as a record.
_PARAM_CHARS = 500


def import_mlflow():
    """The ``mlflow`` module, or an ImportError that says how to get it."""
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(
            "Tracking with MLflow (mlflowExperiment, tune_classifier(track=...), sparktf tune "
            "--mlflow-experiment) needs the mlflow package, which sparktf does not install: "
            "pip install mlflow (or mlflow-skinny)."
        ) from exc
    return mlflow


def active_run_id() -> str | None:
    """The run id of MLflow's active run in this thread, None when there is none (or when
    MLflow was never imported: no run can be active then)."""
    import sys

    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def experiment_id(client: Any, name: str) -> str:
    """The id of the experiment ``name``, created when it does not exist."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name)


class TrackingGuard:
    """Keeps tracking from failing the training it records: the first error of a tracker's
    MLflow calls is one warning, and every later call of that tracker does nothing."""

    def __init__(self) -> None:
        self.failed = False

    def fail(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            warnings.warn(
                f"MLflow tracking stopped: {type(exc).__name__}: {exc}. The training goes on "
                "untracked.",
                RuntimeWarning,
                stacklevel=3,
            )


def guarded(method: Callable) -> Callable:
    """A tracker method that never raises: an error is its tracker's one warning (see
    :class:`TrackingGuard`); a tracker that failed once does nothing more."""

    @functools.wraps(method)
    def call(self, *args: Any, **kwargs: Any) -> Any:
        if self.guard.failed:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.guard.fail(exc)
            return None

    return call


def param_values(items: Iterable[tuple[str, Any]], prefix: str = "") -> dict[str, str]:
    """MLflow params: each value as text, long ones (a Keras model's JSON) cut short.

    >>> param_values([("learningRate", 0.01), ("hiddenLayers", [64, 32])])
    {'learningRate': '0.01', 'hiddenLayers': '[64, 32]'}
    """
    out = {}
    for name, value in items:
        text = str(value)
        if len(text) > _PARAM_CHARS:
            text = text[: _PARAM_CHARS - 3] + "..."
        out[prefix + name] = text
    return out


def history_metrics(
    histories: list[dict[str, list[float]]], first_epoch: int, timestamp: int | None = None
) -> list[tuple[str, float, int, int]]:
    """``(key, value, timestamp, step)`` of per-epoch histories, the step being the epoch
    (from ``first_epoch``, so a rung continues the curve of the rung before). One history is
    logged as it is (``loss``, ``accuracy``, ``val_loss``, ...); several, a trial per fold, as
    each fold's (``fold1/loss``) and their mean over the folds (``loss``).

    >>> history_metrics([{"loss": [0.5, 0.25]}], 3, timestamp=0)
    [('loss', 0.5, 0, 3), ('loss', 0.25, 0, 4)]
    >>> [m[:2] for m in history_metrics([{"loss": [1.0]}, {"loss": [3.0]}], 0, 0)]
    [('fold1/loss', 1.0), ('fold2/loss', 3.0), ('loss', 2.0)]
    """
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    out: list[tuple[str, float, int, int]] = []
    many = len(histories) > 1
    if many:
        for fold, history in enumerate(histories, start=1):
            for key, values in history.items():
                out += [
                    (f"fold{fold}/{key}", float(v), stamp, first_epoch + i)
                    for i, v in enumerate(values)
                ]
    keys = dict.fromkeys(k for h in histories for k in h)
    for key in keys:
        series = [h.get(key) or [] for h in histories]
        for i in range(max(len(s) for s in series)):
            values = [float(s[i]) for s in series if i < len(s)]
            mean = math.fsum(values) / len(values)
            out.append((key, mean, stamp, first_epoch + i))
    return out
