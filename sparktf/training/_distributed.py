"""The driver side of training N models as one Spark job, one task per param map.

The training data is broadcast once per call; each task builds, trains and serializes one model
(:func:`sparktf.training._training.train_one`). While the job runs, the driver reports how many
models are trained and the time, as a progress bar on a terminal and as ``logging`` records
otherwise; when it ends, one line per trial with its last epoch's train (and val) accuracy and loss.
The job group and description name the run in the Spark UI.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sparktf.training._plans import TrainingData, TrainingResult, TrainingSpec

logger = logging.getLogger("sparktf.tuning")

__all__ = ["run_training_job", "run_trainings"]


def _summary(result: TrainingResult, label: str | None) -> dict[str, Any]:
    """The small record of one finished trial: label, error, seconds, last epoch's metrics."""
    history = result.get("history") or {}
    summary = {
        "index": result["index"],
        "label": label,
        "error": result["error"],
        "seconds": result["seconds"],
    }
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if history.get(key):
            summary[key] = history[key][-1]
    return summary


# How a trial's last-epoch metrics are named in its line: accuracy and loss are measured on the
# rows the model trained on, the val_ ones on the rows held out of its training.
_METRIC_NAMES = {
    "val_accuracy": "val accuracy",
    "accuracy": "train accuracy",
    "val_loss": "val loss",
    "loss": "train loss",
}


def _describe(record: dict[str, Any]) -> str:
    """``label: val accuracy 0.9600, train accuracy 0.9900, ... (3.2s)`` (no label: no prefix).

    >>> _describe({"label": "lr=0.1", "accuracy": 0.99, "loss": 0.05, "seconds": 3.21})
    'lr=0.1: train accuracy 0.9900, train loss 0.0500 (3.2s)'
    >>> _describe({"label": None, "error": "loss became nan", "seconds": 1.0})
    'failed (loss became nan)'
    """
    label = record.get("label")
    prefix = f"{label}: " if label else ""
    if record.get("error"):
        return f"{prefix}failed ({record['error']})"
    metrics = ", ".join(
        f"{name} {record[key]:.4f}"
        for key, name in _METRIC_NAMES.items()
        if record.get(key) is not None
    )
    return f"{prefix}{metrics or 'trained'} ({record['seconds']:.1f}s)"


class _Progress:
    """How many of a job's models are trained: a progress bar on a terminal, log lines (logger
    ``sparktf.tuning``, INFO) otherwise."""

    def __init__(self, total: int, name: str, stream=None) -> None:
        self.total = total
        self.name = name
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.shown = -1

    def update(self, done: int) -> None:
        if done == self.shown:
            return
        self.shown = done
        elapsed = time.time() - self.start
        if self.tty:
            width = 24
            filled = int(width * done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            line = f"\r{self.name} [{bar}] {done}/{self.total} models trained, {elapsed:6.1f}s"
            self.stream.write(line[:200])
            self.stream.flush()
        else:
            logger.info("%s: %d/%d models trained, %.1fs", self.name, done, self.total, elapsed)

    def close(self) -> None:
        if self.tty and self.shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


def run_trainings(
    spark,
    data: TrainingData,
    specs: Sequence[TrainingSpec],
    labels: Sequence[str] | None = None,
    name: str = "sparktf",
    strict: bool = False,
    poll_seconds: float = 0.5,
) -> list[TrainingResult]:
    """Train one model per spec as one Spark job; return the task results in spec order.

    A failing trial is reported in its result (``error``), it does not fail the job. Spark's own
    task retries still cover lost executors. With ``strict``, the first failed trial stops the
    job and raises :class:`~sparktf.errors.TrialFailedError`.
    """
    from sparktf._spark import share
    from sparktf.training._image_data import check_image_specs
    from sparktf.training._training import train_one

    specs = list(specs)
    check_image_specs(data, specs, "TFClassifier")
    labels = list(labels) if labels is not None else [None] * len(specs)
    alone = [i for i, spec in enumerate(specs) if spec.num_workers == 1]
    together = [i for i, spec in enumerate(specs) if spec.num_workers > 1]
    shared = share(spark, {"data": data, "specs": specs, "alone": alone})

    def train(index: int) -> TrainingResult:
        value = shared.value
        at = value["alone"][index]
        return train_one(index, value["specs"][at], value["data"])

    results: list[Any] = [None] * len(specs)
    try:
        if alone:
            trained = run_training_job(
                spark, len(alone), train, [labels[i] for i in alone], name, strict, poll_seconds
            )
            for index, result in zip(alone, trained, strict=True):
                results[index] = {**result, "index": index}
        for index in together:  # each map on a group of workers of its own
            results[index] = _train_together(
                spark, shared, index, specs[index], labels[index], name, strict, poll_seconds
            )
        return results
    finally:
        shared.release()


def _train_together(spark, shared, index, spec, label, name, strict, poll_seconds):
    """One map trained on ``spec.num_workers`` tasks (:mod:`sparktf.training._multiworker`)."""
    from sparktf._spark import TaskFailure
    from sparktf.training._multiworker import train_on_workers

    progress = _Progress(1, f"{name} ({spec.num_workers} workers)")
    progress.update(0)
    try:
        result = train_on_workers(spark, shared, index, spec, label, name, strict, poll_seconds)
        progress.update(1)
    except TaskFailure as exc:
        from sparktf.errors import TrialFailedError

        raise TrialFailedError(exc.message) from None
    finally:
        progress.close()
    logger.info("%s: %s", name, _describe(_summary(result, label)))
    return result


def run_training_job(
    spark,
    n: int,
    train: Callable[[int], TrainingResult],
    labels: Sequence[str | None] | None = None,
    name: str = "sparktf",
    strict: bool = False,
    poll_seconds: float = 0.5,
) -> list[TrainingResult]:
    """Run ``train(index)`` (a :func:`~sparktf.training._training.train_one` result) as the ``n``
    tasks of one Spark job, with progress while it runs and one line per trial when it ends."""
    from sparktf._spark import TaskFailure, run_tasks

    labels = list(labels) if labels is not None else [None] * n

    def task(index: int) -> TrainingResult:
        result = train(index)
        if strict and result["error"]:
            trial = f"Trial [{labels[index]}]" if labels[index] else "The training"
            raise TaskFailure(f"{trial} failed (failOnTrialError=True): {result['error']}")
        return result

    tag = f"sparktf-{uuid.uuid4().hex[:12]}"
    description = f"{name}: training {n} model{'s' if n != 1 else ''} (one per task)"
    progress = _Progress(n, name)
    try:
        results = run_tasks(
            spark,
            n,
            task,
            description,
            on_progress=progress.update,
            poll_seconds=poll_seconds,
            tag=tag,
        )
        progress.update(n)
    except TaskFailure as exc:
        from sparktf.errors import TrialFailedError

        raise TrialFailedError(exc.message) from None
    finally:
        progress.close()
    for record in results:  # each trial once, in the order of its settings
        record["worker"]["jobGroup"] = tag
        logger.info("%s: %s", name, _describe(_summary(record, labels[record["index"]])))
    return results
