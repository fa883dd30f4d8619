"""One model on several Spark tasks: a barrier stage whose tasks form a TensorFlow cluster.

Driver side (:func:`train_on_workers`): a param map with ``numWorkers = k > 1`` trains as one
barrier stage of ``k`` tasks (:func:`sparktf._spark.run_tasks` with ``barrier=True``, the same
call on classic Spark and over Connect), after a check that the cluster has ``k`` task slots.
A stage lost to the cluster (an executor or a worker process gone) is run once more; a failed
training (a non-finite loss, a bad ``kerasModel``) is the trial's failure, as in one task.

Task side (:func:`worker_task`): each task picks a free port, learns every task's host and port
in one ``allGather``, and runs :mod:`sparktf.training._collective` in a process of its own (forked
from the Python worker's warm process, :mod:`sparktf.training._warm`, or else fresh) with
``TF_CONFIG`` naming the cluster, the GPUs Spark assigned to the task and the task's CPUs. The
job (the whole training data) goes to the process through a pipe and its result comes back
through another, and its log is an unnamed file: a task Spark kills (no ``finally`` runs) leaves
no file behind on the executor. A
worker whose training fails fails its task, which ends the whole stage: Spark stops the other
tasks, and each worker process dies with its task, so nothing waits on a peer that is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from sparktf.training._plans import TrainingData, TrainingResult, TrainingSpec, WorkerResult

logger = logging.getLogger("sparktf.tuning")

__all__ = ["check_slots", "train_on_workers", "worker_task"]

# Attempts of a barrier stage lost to the cluster (not to its training).
ATTEMPTS = 2
# How long the driver waits for executors still registering before it calls the cluster small:
# until their number has not changed for _SLOT_SETTLE_SECONDS, at most _SLOT_WAIT_SECONDS.
_SLOT_WAIT_SECONDS = 30.0
_SLOT_SETTLE_SECONDS = 3.0
_LOG_TAIL = 2000
# What Spark's barrier check says when a stage needs more slots than the cluster has.
_SLOTS_REFUSED = "SPARK-24819"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _child_environment(tf_config: dict[str, Any]) -> dict[str, str]:
    from sparktf.training._process import child_environment

    return {**child_environment(), "TF_CONFIG": json.dumps(tf_config)}


def _tail(log) -> str:
    """The end of the worker's log (an open binary file)."""
    try:
        log.flush()
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - _LOG_TAIL))
        return log.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""


def _join(workers: int) -> tuple[int, list[str]]:
    """This task's rank and every worker's ``host:port``, a free port each (one allGather)."""
    from sparktf._spark import barrier_peers

    rank, hosts, messages = barrier_peers(json.dumps({"port": _free_port()}))
    ports = [int(json.loads(m)["port"]) for m in messages]
    return rank, [f"{host}:{port}" for host, port in zip(hosts, ports, strict=True)]


def _run_process(job: dict[str, Any]) -> WorkerResult:
    """Run ``job`` in a fresh ``sparktf.training._collective`` process; its result, or
    RuntimeError.

    The job goes to the process's standard input and its result comes back through a pipe of its
    own; the log is an unnamed temporary file. Nothing is ever written under a name, so a task
    killed by Spark (its Python worker ends at once, no ``finally`` runs; the process follows
    it) leaves no copy of the training data behind."""
    rank, workers = job["rank"], job["workers"]
    with tempfile.TemporaryFile(prefix=f"sparktf-worker{rank}-") as log:
        payload, code = _exchange(job, log)
        try:
            return pickle.loads(payload)
        except Exception:  # nothing, or cut short: the process died
            address = job["tf_config"]["cluster"]["worker"][rank]
            raise RuntimeError(
                f"the training process of worker {rank} of {workers} (on {address}) ended "
                f"with exit code {code} before finishing: {_tail(log)[-600:]}"
            ) from None


def _exchange(job: dict[str, Any], log) -> tuple[bytes, int]:
    """Start the worker process, hand it ``job``, wait; its pickled result and exit code.

    The process is forked from this Python worker's warm process where there is one
    (:mod:`sparktf.training._warm`: TensorFlow already imported), else started fresh."""
    from sparktf.training._warm import WarmUnavailable, forget, warm_process

    warm = warm_process()
    if warm is not None:
        try:
            return _exchange_warm(warm, job, log)
        except WarmUnavailable as exc:
            logger.info("starting a fresh training process: %s", exc)
            forget(warm)
    return _exchange_fresh(job, log)


def _hand_over(job: dict[str, Any], job_pipe, results) -> bytes:
    """Write ``job`` to the process's input, then read its result until the pipe ends."""
    try:
        with job_pipe:
            pickle.dump(job, job_pipe, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:  # the process ended before reading it all: said by the caller
        pass
    return results.read()


def _exchange_warm(warm, job: dict[str, Any], log) -> tuple[bytes, int]:
    """:func:`_exchange` through ``warm``: the same pipes, handed to a forked process."""
    read_end, write_end = os.pipe()
    job_read, job_write = os.pipe()
    try:
        env = _child_environment(job["tf_config"])
        pid = warm.start(env, log.fileno(), write_end, job_read)
    except BaseException:
        os.close(read_end)
        os.close(job_write)
        raise
    finally:
        os.close(write_end)  # the child's copies are the only ones
        os.close(job_read)
    code = None
    try:
        with os.fdopen(read_end, "rb") as results:
            payload = _hand_over(job, os.fdopen(job_write, "wb"), results)
        code = warm.wait()
        return payload, code
    finally:
        if code is None:  # interrupted: the process must not outlive its task
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            warm.wait()


def _exchange_fresh(job: dict[str, Any], log) -> tuple[bytes, int]:
    """:func:`_exchange` in a fresh Python process."""
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "sparktf.training._collective", str(write_end)],
            env=_child_environment(job["tf_config"]),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)  # the child's copy is the only one: its end is the pipe's end
    try:
        with os.fdopen(read_end, "rb") as results:
            payload = _hand_over(job, child.stdin, results)
        return payload, child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def worker_task(spec: TrainingSpec, data: TrainingData) -> WorkerResult:
    """The body of one barrier task: start this rank's worker process, wait, return its result.

    Raises :class:`~sparktf._spark.TaskFailure` when the training failed (so the stage ends
    and the driver reports the trial's failure), ``RuntimeError`` when the worker process
    died without a result (the stage may be run again).
    """
    from sparktf._spark import TaskFailure
    from sparktf._tf import task_cpus, task_gpus
    from sparktf.training._training import peak_rss_mib, worker_identity

    started = time.time()
    workers = int(spec.num_workers)
    rank, cluster = _join(workers)
    job = {
        "spec": spec,
        "data": data,
        "rank": rank,
        "workers": workers,
        "tf_config": {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": rank}},
        "threads": task_cpus(),
        "gpus": task_gpus(),
        "spawned": time.time(),
    }
    result = _run_process(job)
    if result["error"]:
        raise TaskFailure(f"worker {rank} of {workers}: {result['error']}")
    result["worker"] = dict(
        worker_identity(),
        rank=rank,
        address=cluster[rank],
        started=started,
        finished=time.time(),
        peakRssMiB=peak_rss_mib(),
        childPeakRssMiB=result.get("peakRssMiB"),
        threads=job["threads"],
    )
    return result


def _too_few(workers: int, slots: int | None, label: str | None) -> str:
    trial = f" (trial [{label}])" if label else ""
    has = f"only {slots}" if slots is not None else "fewer"
    return (
        f"TFClassifier with numWorkers={workers}{trial} trains as one barrier stage of "
        f"{workers} tasks that run at once, but the cluster has {has} task slots "
        "(executor cores / spark.task.cpus). Lower numWorkers, or add executors or cores."
    )


def check_slots(spark, workers: int, label: str | None = None) -> None:
    """Refuse, within seconds, a ``numWorkers`` the cluster cannot run at once.

    Executors that are still registering (a session just started) are waited for while their
    number grows; once it has stood still for a few seconds, too few slots is an error.
    """
    from sparktf._spark import task_slots
    from sparktf.errors import NotEnoughSlotsError

    slots = task_slots(spark)
    changed, deadline = time.time(), time.time() + _SLOT_WAIT_SECONDS
    while slots is not None and slots < workers:
        now = time.time()
        if now - changed >= _SLOT_SETTLE_SECONDS or now >= deadline:
            raise NotEnoughSlotsError(_too_few(workers, slots, label))
        time.sleep(0.5)
        now_slots = task_slots(spark)
        if now_slots != slots:
            slots, changed = now_slots, time.time()


def _merge(index: int, results: list[WorkerResult], tag: str) -> TrainingResult:
    """One trial's result from its workers': rank 0's model and history, every worker's part.

    Its ``seconds`` run from the first worker's start to the last one's end.
    """
    first = results[0]
    workers = [
        dict(
            result["worker"],
            shardRows=result.get("shardRows"),
            rowsRead=result.get("rowsRead"),
            weightsDigest=result.get("weightsDigest"),
            timing=result.get("timing"),
            seconds=result["seconds"],
        )
        for result in results
    ]
    merged: TrainingResult = {
        "index": index,
        "model": first.get("model"),
        "error": first.get("error"),
        "history": first.get("history", {}),
        "seconds": max(r["worker"]["finished"] for r in results)
        - min(r["worker"]["started"] for r in results),
        "worker": dict(first["worker"], jobGroup=tag, workers=workers),
    }
    for key in ("outputsLogits", "image"):  # the image column's network: its input size
        if key in first:
            merged[key] = first[key]
    return merged


def train_on_workers(
    spark,
    shared,
    index: int,
    spec: TrainingSpec,
    label: str | None,
    name: str,
    strict: bool,
    poll_seconds: float = 0.5,
) -> TrainingResult:
    """Train map ``index`` of ``shared`` (``{"data", "specs"}``) on ``spec.num_workers`` tasks.

    Returns a result as :func:`sparktf.training._training.train_one` does (its ``worker`` lists
    every worker). A failed training is the result's ``error``, or with ``strict`` a
    :class:`~sparktf._spark.TaskFailure`.
    """
    import uuid

    from sparktf._spark import TaskFailure, run_tasks

    workers = int(spec.num_workers)
    check_slots(spark, workers, label)

    def task(_rank: int) -> WorkerResult:
        value = shared.value
        return worker_task(value["specs"][index], value["data"])

    start = time.time()
    error: str | None = None
    for attempt in range(1, ATTEMPTS + 1):
        tag = f"sparktf-{uuid.uuid4().hex[:12]}"
        description = f"{name}: training 1 model on {workers} workers (one barrier stage)"
        try:
            results = run_tasks(
                spark, workers, task, description, poll_seconds=poll_seconds, tag=tag, barrier=True
            )
        except TaskFailure as exc:  # the training failed: the trial's failure
            if strict:
                raise
            error = exc.message
            break
        except Exception as exc:  # the stage was lost to the cluster: once more
            if _SLOTS_REFUSED in str(exc):  # Spark's own check (over Connect)
                from sparktf.errors import NotEnoughSlotsError

                raise NotEnoughSlotsError(_too_few(workers, None, label)) from None
            error = f"the barrier stage of {workers} workers failed: {_first_line(exc)}"
            if attempt < ATTEMPTS:
                logger.warning("%s: %s; running it again", name, error)
                continue
            break
        else:
            result = _merge(index, results, tag)
            digests = {w["weightsDigest"] for w in result["worker"]["workers"]}
            if len(digests) > 1:  # pragma: no cover - a broken collective
                result["model"], result["error"] = None, "the workers ended with different weights"
            return result
    if strict:
        raise TaskFailure(f"Trial [{label}] failed: {error}" if label else str(error))
    return _failed(index, str(error), time.time() - start)


def _failed(index: int, error: str, seconds: float) -> TrainingResult:
    """The result of a trial whose workers returned no model."""
    return {
        "index": index,
        "model": None,
        "error": error,
        "history": {},
        "seconds": seconds,
        "worker": {"workers": []},
    }


def _first_line(exc: BaseException) -> str:
    """What a lost stage's failure says: the worker's own error where the text has one."""
    text = str(exc)
    found = re.search(r"RuntimeError: (the training process of worker [^\n]*)", text)
    if found:
        return found.group(1)[:600]
    found = re.search(r"(Job aborted due to stage failure: [^\n]*)", text)
    if found:
        return found.group(1)[:600]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:600]
