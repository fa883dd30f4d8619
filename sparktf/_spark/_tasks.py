"""Running functions as the tasks of one Spark job, with progress and cancellation."""

from __future__ import annotations

import contextlib
import pickle
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sparktf._spark._session import is_connect

# Result bytes travel back in rows of at most this size (a model can be larger than one row).
_CHUNK_BYTES = 8 * 2**20
_RESULT_SCHEMA = "index long, part int, data binary"
# A task that wants the whole job stopped raises an error whose text carries this marker.
_STOP_MARK = "[sparktf-stop]"


class TaskFailure(Exception):
    """Raised inside a task to stop the whole job with ``message`` (see :func:`run_tasks`)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{_STOP_MARK}{message}{_STOP_MARK}")
        self.message = message


def stop_message(exc: BaseException) -> str | None:
    """The message of a :class:`TaskFailure` raised by a task, found in a job's failure."""
    text = str(exc)
    start = text.find(_STOP_MARK)
    if start < 0:
        return None
    end = text.find(_STOP_MARK, start + len(_STOP_MARK))
    return text[start + len(_STOP_MARK) : end if end > 0 else None]


def _result_batch(index: int, value: Any):
    """One task's result as an Arrow batch of rows (index, part, data): pickled, chunked."""
    import pyarrow as pa

    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    chunks = [
        payload[start : start + _CHUNK_BYTES]
        for start in range(0, max(1, len(payload)), _CHUNK_BYTES)
    ]
    return pa.RecordBatch.from_arrays(
        [
            pa.array([index] * len(chunks), pa.int64()),
            pa.array(range(len(chunks)), pa.int32()),
            pa.array(chunks, pa.binary()),
        ],
        names=["index", "part", "data"],
    )


def _task_body(fn: Callable[[int], Any]):
    def body(batches):
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield _result_batch(int(index), fn(int(index)))

    return body


def _assemble(rows: Sequence[Any]) -> dict[int, Any]:
    parts: dict[int, list[tuple[int, bytes]]] = {}
    for row in rows:
        parts.setdefault(int(row["index"]), []).append((int(row["part"]), bytes(row["data"])))
    return {
        index: pickle.loads(b"".join(data for _, data in sorted(chunks)))
        for index, chunks in parts.items()
    }


class _ConnectProgress:
    """Counts finished tasks of the stages with ``n`` tasks from Connect's progress updates."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0

    def __call__(self, stages, inflight_tasks, operation_id, done) -> None:
        for stage in stages or ():
            if stage.num_tasks == self.n:
                self.done = max(self.done, int(stage.num_completed_tasks))


def run_tasks(
    spark,
    n: int,
    fn: Callable[[int], Any],
    description: str,
    on_progress: Callable[[int], None] | None = None,
    poll_seconds: float = 0.5,
    tag: str | None = None,
    barrier: bool = False,
) -> list[Any]:
    """Run ``fn(0) .. fn(n-1)`` as the ``n`` tasks of one Spark job; return results in order.

    ``fn`` is pickled into the tasks (with what it captures: use :func:`share` for large
    values) and returns something picklable. ``on_progress(finished)`` is called on the driver
    as tasks finish. A task that raises :class:`TaskFailure` stops the job, and the driver
    raises ``TaskFailure`` with its message; Spark's own task retries still cover lost
    executors. Ctrl-C cancels the job. ``tag`` names the job (a job group on classic
    sessions, an operation tag over Connect). With ``barrier``, the tasks run as one barrier
    stage: all at once or none, and they may call :func:`barrier_peers`; Spark retries no
    failed task of it, the job fails as a whole.
    """
    frame = spark.range(0, n, 1, n).mapInArrow(_task_body(fn), _RESULT_SCHEMA, barrier=barrier)
    tag = tag or f"sparktf-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, Any] = {}
    connect = is_connect(spark)
    counter = _ConnectProgress(n) if connect else None

    def run_job() -> None:
        try:
            if connect:
                spark.addTag(tag)
            else:
                spark.sparkContext.setJobGroup(tag, description, interruptOnCancel=True)
            outcome["rows"] = frame.collect()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            if connect:
                with contextlib.suppress(Exception):
                    spark.removeTag(tag)

    if counter is not None:
        spark.registerProgressHandler(counter)
    thread = _thread(run_job, tag, connect)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(poll_seconds)
            if on_progress is not None:
                finished = counter.done if counter is not None else _finished(spark, tag)
                on_progress(finished)
    except KeyboardInterrupt:
        _cancel(spark, tag, connect)
        raise
    finally:
        if counter is not None:
            with contextlib.suppress(Exception):
                spark.removeProgressHandler(counter)
    if "error" in outcome:
        message = stop_message(outcome["error"])
        if message is not None:
            raise TaskFailure(message) from None
        raise outcome["error"]
    results = _assemble(outcome["rows"])
    return [results[index] for index in range(n)]


def barrier_peers(message: str) -> tuple[int, list[str], list[str]]:
    """Inside a barrier task of :func:`run_tasks`: this task's rank (its index), the host of
    every task's executor, and every task's ``message``, in rank order (one ``allGather``)."""
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    hosts = [info.address.rsplit(":", 1)[0] for info in context.getTaskInfos()]
    return int(context.partitionId()), hosts, list(context.allGather(message))


def task_slots(spark) -> int | None:
    """How many tasks the session's executors can run at once (classic sessions; None over
    Connect, whose client cannot ask). Executors still registering are not counted yet."""
    if is_connect(spark):
        return None
    try:
        scala = spark.sparkContext._jsc.sc()
        profile = scala.resourceProfileManager().defaultResourceProfile()
        return int(scala.maxNumConcurrentTasks(profile))
    except Exception:  # an older or a different SparkContext: let Spark's own check decide
        return None


# Rows of the range that spreads run_on_workers over the session's default parallelism: enough
# for every partition of any cluster to hold at least one.
_SPREAD_ROWS = 1 << 14


def _once_body(fn: Callable[[], Any]):
    def body(batches):
        from pyspark import TaskContext

        if sum(batch.num_rows for batch in batches):  # reads all input, as Spark expects
            yield _result_batch(TaskContext.get().partitionId(), fn())

    return body


def run_on_workers(spark, fn: Callable[[], Any], description: str) -> list[Any]:
    """``fn()`` once in each task of one Spark job over the session's default parallelism (about
    one task per task slot, so every Python worker a following job uses runs it); the picklable
    results, in no particular order. Errors ``fn`` raises fail the job as any task error does."""
    frame = spark.range(0, _SPREAD_ROWS).mapInArrow(_once_body(fn), _RESULT_SCHEMA)
    if is_connect(spark):
        rows = frame.collect()
    else:
        context = spark.sparkContext
        previous = context.getLocalProperty("spark.job.description")
        context.setJobDescription(description)
        try:
            rows = frame.collect()
        finally:
            context.setJobDescription(previous)
    return list(_assemble(rows).values())


def _thread(target, name: str, connect: bool) -> threading.Thread:
    if connect:
        return threading.Thread(target=target, name=name, daemon=True)
    from pyspark import InheritableThread  # carries the job group and local properties

    return InheritableThread(target=target, name=name, daemon=True)


def _finished(spark, group: str) -> int:
    """Finished tasks of the job group's jobs (classic sessions: the status tracker)."""
    try:
        tracker = spark.sparkContext.statusTracker()
        done = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job else ():
                stage = tracker.getStageInfo(stage_id)
                done += stage.numCompletedTasks if stage else 0
        return done
    except Exception:  # the context is stopping
        return 0


def _cancel(spark, tag: str, connect: bool) -> None:
    with contextlib.suppress(Exception):
        if connect:
            spark.interruptTag(tag)
        else:
            spark.sparkContext.cancelJobGroup(tag)
