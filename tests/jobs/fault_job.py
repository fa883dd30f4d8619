"""Faults injected into running jobs on a multi-process cluster, in a driver process of its own.

Used by tests/spark/test_cluster.py. On ``local-cluster`` (executors are JVMs of their own, each
with a Python daemon forking the Python workers that run tasks), a watcher thread kills (SIGKILL) a
Python worker in the middle of:

1. a 4-map ``fitMultiple`` (80 epochs a map), once TensorFlow is loaded in the worker (it is
   training), and
2. a ``TFGraphTransformer`` transform over 200,000 rows in 8 partitions: the worker that holds
   the model of one task, found through a marking UDF that holds that task's rows back until the
   kill (a worker merely seen busy may be between tasks, and its death then fails nothing).

Spark reruns the lost task elsewhere. Prints one JSON line (``RESULT {...}``): the killed PIDs,
the failed tasks Spark saw, the final losses beside a grid trained without a fault, the rows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pandas as pd
import processes  # tests/jobs/processes.py, beside this script
from pyspark import cloudpickle

# the marking UDF runs processes' code on the executors, which cannot import the job scripts
cloudpickle.register_pickle_by_value(processes)


def main_local(master: str) -> None:
    """The embedded default: a Python worker killed while it trains is retried (get_spark's
    local master tries a task up to 4 times)."""
    from sparktf import TFClassifier
    from sparktf.datasets import load_digits
    from sparktf.session import get_spark

    spark = get_spark(master=master, app_name="sparktf-local-fault-test")
    sc = spark.sparkContext
    try:
        train = load_digits(spark, num_partitions=2).cache()
        clf = TFClassifier(hiddenLayers=[32], epochs=60, batchSize=32, seed=5)
        maps = [{clf.learningRate: rate} for rate in (1e-3, 1e-2)]
        killed: list[int] = []
        stop = threading.Event()
        watcher = threading.Thread(
            target=processes.kill_one,
            args=(processes.local_workers, killed, processes.training, stop, 0.0),
            daemon=True,
        )
        watcher.start()
        models = dict(clf.fitMultiple(train, maps))
        stop.set()
        group = models[0].history["worker"]["jobGroup"]
        result = {
            "master": sc.master,
            "killed": killed,
            "failedTasks": processes.failed_tasks(sc, group),
            "models": sum(models[i].hasModel for i in range(len(maps))),
            "trainingFailures": [models[i].trainingFailure for i in range(len(maps))],
        }
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        spark.stop()


def main(master: str) -> None:
    from sparktf.session import get_spark

    if master.startswith("local["):
        return main_local(master)
    if not master.startswith("local-cluster"):
        raise SystemExit("fault_job.py kills executor processes: use a local-cluster master")
    spark = get_spark(master=master, app_name="sparktf-fault-test")
    try:
        print("RESULT " + json.dumps(faults(spark)), flush=True)
    finally:
        spark.stop()


def faults(spark) -> dict:
    """The two faults on ``spark``'s executors (a local-cluster): ``{"fit": ..., "transform":
    ...}``. Also the last step of tests/jobs/local_cluster_job.py (it kills Python workers)."""
    fit, model = _killed_in_fit(spark)
    return {"fit": fit, "transform": _killed_in_transform(spark, model)}


_FIT_ATTEMPTS = 3  # faulted fits run until a kill fails a task (see _killed_in_fit)


def _killed_in_fit(spark):
    """A 4-map grid trained, then again with a worker killed while it trains: the fit's
    figures, and a model of the clean grid."""
    from sparktf import TFClassifier
    from sparktf.datasets import load_digits

    sc = spark.sparkContext
    train = load_digits(spark, num_partitions=2).cache()
    clf = TFClassifier(hiddenLayers=[32], epochs=80, batchSize=32, seed=5)
    maps = [{clf.learningRate: rate} for rate in (1e-3, 3e-3, 1e-2, 3e-2)]

    def losses(models):
        return [models[i].history["epochs"]["loss"][-1] for i in range(len(maps))]

    clean = dict(clf.fitMultiple(train, maps))
    # the kill is inferred from CPU: on a loaded machine it may land on a worker between two
    # tasks, which fails nothing and proves nothing; such an attempt is run again
    attempts = 0
    while attempts < _FIT_ATTEMPTS:
        attempts += 1
        killed: list[int] = []
        stop = threading.Event()
        find = processes.executor_workers(sc)
        args = (find, killed, processes.training, stop, 0.0)
        threading.Thread(target=processes.kill_one, args=args, daemon=True).start()
        faulted = dict(clf.fitMultiple(train, maps))
        stop.set()
        group = faulted[0].history["worker"]["jobGroup"]
        if processes.failed_tasks(sc, group) >= 1:
            break
    fit = {
        "attempts": attempts,
        "killed": list(killed),
        "failedTasks": processes.failed_tasks(sc, group),
        "models": sum(faulted[i].hasModel for i in range(len(maps))),
        "cleanLosses": losses(clean),
        "faultedLosses": losses(faulted),
        "trainedBy": [faulted[i].history["worker"]["pid"] for i in range(len(maps))],
        "trainSeconds": [_seconds(clean[i]) for i in range(len(maps))],
    }
    train.unpersist()
    return fit, clean[2]


def _seconds(model) -> float:
    """How long the task that trained ``model`` ran (what the kill has to fall into)."""
    return model.history["worker"]["finished"] - model.history["worker"]["started"]


def _killed_in_transform(spark, model) -> dict:
    """A transform over 200,000 rows with the worker running one task's batches killed: every
    row exactly once.

    The kill is aimed, not inferred from CPU (a worker seen busy may be between tasks, and then
    its death fails nothing). The transform's input comes through a marking UDF of its own: in
    the first attempt of one partition it passes a first TF input batch on, finds the sibling
    worker (a child of the same Python daemon) that read it, writes that PID to a file and
    holds the rest of the partition back. That worker is mid-task for certain; the watcher kills
    it and lets the marker go on, and the task, writing to a dead worker, fails."""
    from pyspark.sql import functions as F

    from sparktf import TFGraphTransformer

    sc = spark.sparkContext
    stage = TFGraphTransformer.fromKeras(
        model.keras_model(), inputCol="features", outputCol="scores", batchSize=64
    )
    rows, width = 200_000, 64
    folder = tempfile.mkdtemp(prefix="sparktf-fault-")
    raw = spark.range(rows, numPartitions=8).select(
        F.col("id"), F.array(*[F.rand(i).cast("float") for i in range(width)]).alias("raw")
    )
    data = raw.select("id", _marking_udf(folder)("raw").alias("features"))
    marked: dict = {}
    killed_t: list[int] = []
    stop = threading.Event()
    group = "sparktf-fault-transform"

    def watch() -> None:
        path = os.path.join(folder, "marked.json")
        if not processes.within(600.0, lambda: os.path.exists(path), stop):
            return
        with open(path) as handle:
            marked.update(json.load(handle))
        try:
            if marked.get("worker"):
                os.kill(marked["worker"], signal.SIGKILL)
                killed_t.append(marked["worker"])
        finally:
            # the task notices the death once its thread reads from the marker again
            open(os.path.join(folder, "released"), "w").close()

    watcher = threading.Thread(target=watch, daemon=True)
    sc.setJobGroup(group, "transform with a killed worker")
    watcher.start()
    try:
        scored = stage.transform(data).select("id", F.size("scores").alias("width")).collect()
    finally:
        stop.set()
        sc.setJobGroup("", "")
        shutil.rmtree(folder, ignore_errors=True)
    ids = [r["id"] for r in scored]
    return {
        "killed": killed_t,
        "marked": marked,
        "failedTasks": processes.failed_tasks(sc, group),
        "rows": len(ids),
        "distinct": len(set(ids)),
        "expected": rows,
        "widths": sorted({r["width"] for r in scored}),
    }


#: The marked partition, and how the marker hands its rows on: in chunks of this many rows (of
#: 64 floats, 512 KiB: each pushes the one before it out of the worker's 64 KiB write buffer),
#: holding back once this many rows are out (more than Spark's Arrow batch of 10,000, so the
#: transform's first batch is complete on the JVM and sent to its worker).
_MARKED_PARTITION, _CHUNK, _HOLD_AFTER = 0, 2_000, 14_000


def _marking_udf(folder: str):
    """A pandas UDF passing its column through unchanged; in the first attempt of partition
    ``_MARKED_PARTITION`` it writes ``marked.json`` in ``folder`` (the PID of the sibling worker
    that read the transform's first batch) and waits for ``released`` there."""
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    def rchar(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/io") as handle:
                return next(int(line.split()[1]) for line in handle if line.startswith("rchar"))
        except (OSError, StopIteration, ValueError):
            return -1

    def siblings() -> dict[int, int]:
        """The other workers of this worker's daemon: PID -> bytes read so far."""
        me, daemon = os.getpid(), os.getppid()
        table = processes.processes()
        return {pid: rchar(pid) for pid, (ppid, _) in table.items() if ppid == daemon and pid != me}

    def hold(before: dict[int, int]) -> None:
        """Find the worker that read the first batch (over 1 MiB since the partition started),
        write it down, wait until released."""
        worker, deadline = None, time.monotonic() + 120
        while worker is None and time.monotonic() < deadline:
            grown = {p: r - before.get(p, 0) for p, r in siblings().items()}
            readers = [p for p, n in grown.items() if n > 1 << 20]
            worker = max(readers, key=grown.get) if readers else None
            time.sleep(0.1)
        record = {"worker": worker, "marker": os.getpid(), "daemon": os.getppid()}
        with open(os.path.join(folder, "marked.tmp"), "w") as handle:
            json.dump(record, handle)
        os.replace(os.path.join(folder, "marked.tmp"), os.path.join(folder, "marked.json"))
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(folder, "released")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def mark(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from pyspark import TaskContext

        context = TaskContext.get()
        if context.partitionId() != _MARKED_PARTITION or context.attemptNumber() != 0:
            yield from batches
            return
        before, sent, held = siblings(), 0, False
        for batch in batches:
            for start in range(0, len(batch), _CHUNK):
                if sent >= _HOLD_AFTER and not held:
                    hold(before)
                    held = True
                chunk = batch.iloc[start : start + _CHUNK]
                sent += len(chunk)
                yield chunk

    return pandas_udf(mark, returnType=T.ArrayType(T.FloatType())).asNondeterministic()


if __name__ == "__main__":
    main(sys.argv[1])
