"""The driver side of training N models as one Spark job, one task per param map.

The training data is broadcast once per call; each task builds, trains and serializes one model
(:func:`sparktf._training.train_one`). While the job runs, the driver reports progress: models
finished / total, elapsed time and the latest result, as a progress line on a terminal and as
``logging`` records otherwise. The job group and description name the run in the Spark UI.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from pyspark import AccumulatorParam, InheritableThread

logger = logging.getLogger("sparktf.tuning")

__all__ = ["TRIAL_LOG", "record_trials", "run_trainings", "trial_records"]

# Trial records per estimator uid, newest last, for tuning reports (bounded: a long-lived driver
# running many searches keeps only the most recent records).
TRIAL_LOG: dict[str, list[dict[str, Any]]] = {}
_TRIAL_LOG_LIMIT = 10_000
_trial_lock = threading.Lock()


def record_trials(uid: str, param_maps: Sequence[dict], results: Sequence[dict[str, Any]]) -> None:
    """Remember each trial's params, time and failure under the estimator's uid."""
    with _trial_lock:
        log = TRIAL_LOG.setdefault(uid, [])
        for param_map, result in zip(param_maps, results, strict=True):
            history = result.get("history") or {}
            log.append(
                {
                    "params": {p.name: v for p, v in param_map.items()},
                    "seconds": result["seconds"],
                    "error": result["error"],
                    "epochsRun": len(history.get("loss", [])),
                    "finalLoss": (history.get("loss") or [None])[-1],
                }
            )
        del log[:-_TRIAL_LOG_LIMIT]


def trial_records(uid: str) -> list[dict[str, Any]]:
    """A copy of the trial records kept for the estimator with this uid."""
    with _trial_lock:
        return [dict(r) for r in TRIAL_LOG.get(uid, [])]


class _ListAccumulator(AccumulatorParam):
    """Collects small per-task records on the driver as tasks finish."""

    def zero(self, value):
        return []

    def addInPlace(self, value1, value2):
        value1.extend(value2)
        return value1


def _summary(result: dict[str, Any], label: str) -> dict[str, Any]:
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


def _describe(record: dict[str, Any]) -> str:
    label = record.get("label", f"#{record['index']}")
    if record.get("error"):
        return f"{label}: failed ({record['error']})"
    parts = [f"{label}:"]
    for key in ("val_accuracy", "accuracy", "val_loss", "loss"):
        if record.get(key) is not None:
            parts.append(f"{key}={record[key]:.4f}")
    parts.append(f"({record['seconds']:.1f}s)")
    return " ".join(parts)


class _Progress:
    """Prints a one-line progress bar on a terminal, or log lines otherwise."""

    def __init__(self, total: int, name: str, stream=None) -> None:
        self.total = total
        self.name = name
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.shown = -1

    def update(self, done: int, latest: str | None) -> None:
        if done == self.shown:
            return
        self.shown = done
        elapsed = time.time() - self.start
        if self.tty:
            width = 24
            filled = int(width * done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            line = f"\r{self.name} [{bar}] {done}/{self.total} models, {elapsed:6.1f}s"
            if latest:
                line += f"  latest {latest}"
            self.stream.write(line[:200])
            self.stream.flush()
        logger.info(
            "%s: %d/%d models finished, %.1fs elapsed%s",
            self.name,
            done,
            self.total,
            elapsed,
            f"; latest {latest}" if latest else "",
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run_trainings(
    spark,
    data: dict[str, Any],
    specs: Sequence[dict[str, Any]],
    labels: Sequence[str] | None = None,
    name: str = "sparktf",
    strict: bool = False,
    poll_seconds: float = 0.5,
) -> list[dict[str, Any]]:
    """Train one model per spec as one Spark job; return the task results in spec order.

    A failing trial is reported in its result (``error``), it does not fail the job. Spark's own
    task retries still cover lost executors. With ``strict``, the first failed trial cancels the
    job and raises :class:`~sparktf.errors.TrialFailedError`.
    """
    from sparktf._training import train_one

    sc = spark.sparkContext
    n = len(specs)
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(n)]
    data_bc = sc.broadcast(data)
    specs_bc = sc.broadcast(list(specs))
    finished = sc.accumulator([], _ListAccumulator())

    def task(index: int, _rows):
        result = train_one(index, specs_bc.value[index], data_bc.value)
        finished.add([_summary(result, labels[index])])
        yield result

    group = f"sparktf-{uuid.uuid4().hex[:12]}"
    description = f"{name}: training {n} model{'s' if n != 1 else ''} (one per task)"
    outcome: dict[str, Any] = {}

    def run_job() -> None:
        try:
            sc.setJobGroup(group, description, interruptOnCancel=True)
            rdd = sc.parallelize(range(n), n).mapPartitionsWithIndex(task)
            outcome["results"] = rdd.collect()
        except BaseException as exc:
            outcome["error"] = exc

    progress = _Progress(n, name)
    thread = InheritableThread(target=run_job, name=group, daemon=True)
    thread.start()
    try:
        seen = 0
        while thread.is_alive():
            thread.join(poll_seconds)
            records = list(finished.value)
            if len(records) != seen or not thread.is_alive():
                seen = len(records)
                progress.update(seen, _describe(records[-1]) if records else None)
            failed = [r for r in records if r["error"]]
            if strict and failed:
                from sparktf.errors import TrialFailedError

                sc.cancelJobGroup(group)
                thread.join()
                raise TrialFailedError(
                    f"Trial [{failed[0]['label']}] failed (failOnTrialError=True): "
                    f"{failed[0]['error']}"
                )
    except KeyboardInterrupt:
        sc.cancelJobGroup(group)
        raise
    finally:
        progress.close()
        for bc in (data_bc, specs_bc):
            with contextlib.suppress(Exception):  # the context may already be stopped
                bc.unpersist()
    if "error" in outcome:
        raise outcome["error"]
    results = sorted(outcome["results"], key=lambda r: r["index"])
    for record in results:
        record["worker"]["jobGroup"] = group
        logger.info("%s", _describe(_summary(record, labels[record["index"]])))
    return results
