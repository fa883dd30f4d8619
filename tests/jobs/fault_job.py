"""Faults injected into running jobs on a multi-process cluster, in a driver process of its own.

Used by tests/spark/test_cluster.py. On ``local-cluster`` (executors are JVMs of their own, each
with a Python daemon forking the Python workers that run tasks), a watcher thread kills (SIGKILL) a
Python worker in the middle of:

1. a 4-map ``fitMultiple`` (80 epochs a map), once TensorFlow is loaded in the worker (it is
   training), and
2. a ``TFGraphTransformer`` transform over 200,000 rows in 8 partitions (a busy worker, again
   until Spark sees a task fail: a worker whose task just ended fails nothing).

Spark reruns the lost task elsewhere. The job prints one JSON line (``RESULT {...}``) with the
killed PIDs, the failed task counts Spark saw, the models' final losses next to those of the
same grid trained without a fault, and the transform's row counts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: PID -> (parent PID, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (ppid, command)
    return found


def _python_workers(app_id: str, exclude: set[int]) -> list[int]:
    """PIDs of the Python workers of this application's executors, and of nothing else on the
    machine: children of a ``pyspark.daemon`` started by an executor JVM of ``app_id``."""
    table = _processes()
    executors = {
        pid
        for pid, (_, command) in table.items()
        if "CoarseGrainedExecutorBackend" in command and app_id in command
    }
    daemons = {
        pid
        for pid, (ppid, command) in table.items()
        if ppid in executors and "pyspark.daemon" in command
    }
    return sorted(pid for pid, (ppid, _) in table.items() if ppid in daemons and pid not in exclude)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy(pids: list[int]) -> list[int]:
    """The workers of ``pids`` running a task: they burn CPU (an idle reused worker waits, at
    none). All are watched over the same half second, so a task is caught within a second of its
    start however many idle workers the application has."""
    before = {}
    for pid in pids:
        try:
            before[pid] = _cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    time.sleep(0.5)
    busy = []
    for pid, seconds in before.items():
        try:
            if _cpu_seconds(pid) - seconds > 0.2:
                busy.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return busy


def _training(pids: list[int]) -> list[int]:
    """The workers of ``pids`` training: TensorFlow is loaded and they are busy."""

    def loaded(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/maps") as handle:
                return "_pywrap_tensorflow" in handle.read()
        except OSError:
            return False

    return _busy([pid for pid in pids if loaded(pid)])


def _local_workers(exclude: set[int]) -> list[int]:
    """PIDs of the Python workers of a local master started by this process: children of a
    ``pyspark.daemon`` whose parent is this process's driver JVM."""
    table = _processes()
    jvms = {
        pid for pid, (ppid, command) in table.items() if ppid == os.getpid() and "java" in command
    }
    daemons = {
        pid
        for pid, (ppid, command) in table.items()
        if ppid in jvms and "pyspark.daemon" in command
    }
    return sorted(pid for pid, (ppid, _) in table.items() if ppid in daemons and pid not in exclude)


def _kill_one(
    find, killed: list[int], ready, stop: threading.Event, settle: float, hit=None
) -> None:
    """Kill the first Python worker ``find(exclude)`` lists that ``ready(pids)`` keeps,
    ``settle`` seconds later.

    With ``hit``, a kill counts once ``hit()`` holds within a few seconds (Spark saw a task
    fail); a worker that went idle between the check and the kill (its task had just ended)
    fails nothing, and then the next ready worker is killed."""
    while not stop.is_set():
        for pid in ready(find(set(killed))):
            time.sleep(settle)
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                continue
            if hit is None or _within(5.0, hit, stop):
                return
        time.sleep(0.2)


def _within(seconds: float, condition, stop: threading.Event) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (or before ``stop`` is set)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _executor_workers(sc):
    return lambda exclude: _python_workers(sc.applicationId, exclude)


def _failed_tasks(sc, group: str) -> int:
    tracker = sc.statusTracker()
    failed = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else ():
            stage = tracker.getStageInfo(stage_id)
            failed += stage.numFailedTasks if stage else 0
    return failed


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
            target=_kill_one, args=(_local_workers, killed, _training, stop, 0.0), daemon=True
        )
        watcher.start()
        models = dict(clf.fitMultiple(train, maps))
        stop.set()
        group = models[0].history["worker"]["jobGroup"]
        result = {
            "master": sc.master,
            "killed": killed,
            "failedTasks": _failed_tasks(sc, group),
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


def _killed_in_fit(spark):
    """A 4-map grid trained twice, the second time with a worker killed while it trains: the
    fit's figures, and a model of the clean grid."""
    from sparktf import TFClassifier
    from sparktf.datasets import load_digits

    sc = spark.sparkContext
    train = load_digits(spark, num_partitions=2).cache()
    clf = TFClassifier(hiddenLayers=[32], epochs=80, batchSize=32, seed=5)
    maps = [{clf.learningRate: rate} for rate in (1e-3, 3e-3, 1e-2, 3e-2)]

    def losses(models):
        return [models[i].history["epochs"]["loss"][-1] for i in range(len(maps))]

    clean = dict(clf.fitMultiple(train, maps))

    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=_kill_one,
        args=(_executor_workers(sc), killed, _training, stop, 0.0),
        daemon=True,
    )
    watcher.start()
    faulted = dict(clf.fitMultiple(train, maps))
    stop.set()
    group = faulted[0].history["worker"]["jobGroup"]
    fit = {
        "killed": list(killed),
        "failedTasks": _failed_tasks(sc, group),
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
    worker = model.history["worker"]
    return worker["finished"] - worker["started"]


def _killed_in_transform(spark, model) -> dict:
    """A transform over 200,000 rows with a busy worker killed until Spark sees a task fail:
    every row exactly once."""
    from pyspark.sql import functions as F

    from sparktf import TFGraphTransformer

    sc = spark.sparkContext
    stage = TFGraphTransformer.fromKeras(
        model.keras_model(), inputCol="features", outputCol="scores", batchSize=64
    )
    rows = 200_000
    data = spark.range(rows, numPartitions=8).select(
        F.col("id"), F.array(*[F.rand(i).cast("float") for i in range(64)]).alias("features")
    )
    killed_t: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=_kill_one,
        args=(_executor_workers(sc), killed_t, _busy, stop, 0.0),
        kwargs={"hit": lambda: _failed_tasks(sc, "sparktf-fault-transform") >= 1},
        daemon=True,
    )
    sc.setJobGroup("sparktf-fault-transform", "transform with a killed worker")
    watcher.start()
    scored = stage.transform(data).select("id", F.size("scores").alias("width")).collect()
    stop.set()
    sc.setJobGroup("", "")
    ids = [r["id"] for r in scored]
    return {
        "killed": killed_t,
        "failedTasks": _failed_tasks(sc, "sparktf-fault-transform"),
        "rows": len(ids),
        "distinct": len(set(ids)),
        "expected": rows,
        "widths": sorted({r["width"] for r in scored}),
    }


if __name__ == "__main__":
    main(sys.argv[1])
