"""Finding, watching and killing a job's processes through /proc (Linux), for the job scripts
that inject faults or count processes (tests/jobs/fault_job.py, tests/jobs/workers_job.py).

Functions here that run in a task (through a UDF) reach the executors by value: the scripts
register this module with ``cloudpickle.register_pickle_by_value``.
"""

from __future__ import annotations

import os
import signal
import threading
import time


def processes() -> dict[int, tuple[int, str]]:
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


def python_workers(app_id: str, exclude: set[int]) -> list[int]:
    """PIDs of the Python workers of this application's executors, and of nothing else on the
    machine: children of a ``pyspark.daemon`` started by an executor JVM of ``app_id``."""
    table = processes()
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


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy(pids: list[int]) -> list[int]:
    """The workers of ``pids`` running a task: they burn CPU (an idle reused worker waits, at
    none). All are watched over the same half second, so a task is caught within a second of its
    start however many idle workers the application has."""
    before = {}
    for pid in pids:
        try:
            before[pid] = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    time.sleep(0.5)
    running = []
    for pid, seconds in before.items():
        try:
            if cpu_seconds(pid) - seconds > 0.2:
                running.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return running


def training(pids: list[int]) -> list[int]:
    """The workers of ``pids`` training: TensorFlow is loaded and they stay busy."""
    # busy over two half seconds in a row: a worker merely finishing a task is not
    return busy(busy([pid for pid in pids if tensorflow_loaded(pid)]))


def local_workers(exclude: set[int]) -> list[int]:
    """PIDs of the Python workers of a local master started by this process: children of a
    ``pyspark.daemon`` whose parent is this process's driver JVM."""
    table = processes()
    jvms = {
        pid for pid, (ppid, command) in table.items() if ppid == os.getpid() and "java" in command
    }
    daemons = {
        pid
        for pid, (ppid, command) in table.items()
        if ppid in jvms and "pyspark.daemon" in command
    }
    return sorted(pid for pid, (ppid, _) in table.items() if ppid in daemons and pid not in exclude)


def kill_one(find, killed: list[int], ready, stop: threading.Event, settle: float) -> None:
    """Kill the first Python worker ``find(exclude)`` lists that ``ready(pids)`` keeps,
    ``settle`` seconds later."""
    while not stop.is_set():
        for pid in ready(find(set(killed))):
            time.sleep(settle)
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                continue
            return
        time.sleep(0.2)


def within(seconds: float, condition, stop: threading.Event) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (or before ``stop`` is set)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def executor_workers(sc):
    return lambda exclude: python_workers(sc.applicationId, exclude)


def failed_tasks(sc, group: str) -> int:
    tracker = sc.statusTracker()
    failed = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else ():
            stage = tracker.getStageInfo(stage_id)
            failed += stage.numFailedTasks if stage else 0
    return failed


def tensorflow_loaded(pid: int) -> bool:
    """Whether a worker process has loaded TensorFlow (it is setting up or training)."""
    try:
        with open(f"/proc/{pid}/maps") as handle:
            return "_pywrap_tensorflow" in handle.read()
    except OSError:
        return False


def worker_processes(tmpdir: str) -> list[int]:
    """PIDs of this job's data-parallel training processes (named ``sparktf-train``, started
    fresh or forked from a warm process): their ``TMPDIR`` is the job's (the same machine may
    run other jobs' workers)."""

    def ours(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() != "sparktf-train":
                    return False
            with open(f"/proc/{pid}/environ", "rb") as handle:
                return f"TMPDIR={tmpdir}".encode() in handle.read().split(b"\0")
        except OSError:
            return False

    return sorted(pid for pid in processes() if ours(pid))
