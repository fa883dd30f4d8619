"""The driver side of training N models as one Spark job, one task per param map.

The training data is broadcast once per call; each task builds, trains and serializes one model
(:func:`sparktf._training.train_one`). While the job runs, the driver reports progress: models
finished / total, elapsed time and the latest result, as a progress line on a terminal and as
``logging`` records otherwise. The job group and description name the run in the Spark UI.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sparktf._plans import TrainingData, TrainingSpec

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
    data: TrainingData,
    specs: Sequence[TrainingSpec],
    labels: Sequence[str] | None = None,
    name: str = "sparktf",
    strict: bool = False,
    poll_seconds: float = 0.5,
) -> list[dict[str, Any]]:
    """Train one model per spec as one Spark job; return the task results in spec order.

    A failing trial is reported in its result (``error``), it does not fail the job. Spark's own
    task retries still cover lost executors. With ``strict``, the first failed trial stops the
    job and raises :class:`~sparktf.errors.TrialFailedError`.
    """
    from sparktf._spark import TaskFailure, run_tasks, share
    from sparktf._training import train_one

    n = len(specs)
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(n)]
    shared = share(spark, {"data": data, "specs": list(specs)})

    def task(index: int) -> dict[str, Any]:
        value = shared.value
        result = train_one(index, value["specs"][index], value["data"])
        if strict and result["error"]:
            raise TaskFailure(
                f"Trial [{labels[index]}] failed (failOnTrialError=True): {result['error']}"
            )
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
            on_progress=lambda done: done < n and progress.update(done, None),
            poll_seconds=poll_seconds,
            tag=tag,
        )
        # The final count, with the trial that finished last.
        last = max(results, key=lambda r: r["worker"]["finished"])
        progress.update(n, _describe(_summary(last, labels[last["index"]])))
    except TaskFailure as exc:
        from sparktf.errors import TrialFailedError

        raise TrialFailedError(exc.message) from None
    finally:
        progress.close()
        shared.release()
    for record in results:
        record["worker"]["jobGroup"] = tag
        logger.info("%s", _describe(_summary(record, labels[record["index"]])))
    return results
