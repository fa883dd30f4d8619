"""Everything sparktf asks of Spark beyond DataFrames, for classic sessions and Spark Connect.

The rest of the package talks to Spark only through DataFrames and these functions:

* :func:`run_tasks`: run ``fn(index)`` for ``index`` in ``0..n-1`` as the ``n`` tasks of one
  Spark job (``spark.range(n, numPartitions=n).mapInArrow(...)``) and return the results, which
  travel back as rows of pickled, chunked bytes; with progress and cancellation;
  :func:`run_on_workers` runs ``fn()`` once per task of a job spread like the session's default
  parallelism (to prepare every Python worker);
* :func:`share`: ship a read-only value to every worker once (a broadcast on a classic session;
  a file added as a session artifact over Connect, loaded once per Python worker);
* :func:`write_bytes`, :func:`read_bytes`, :func:`path_status`, :func:`list_files`,
  :func:`delete_path`: files under any path Spark can reach (local, HDFS, S3, ...);
* :func:`driver_heap_bytes`, :func:`set_log_level`: the session's driver.

On a classic session these use the SparkContext (broadcasts, the status tracker, Hadoop's
FileSystem through the JVM); over Spark Connect, where the client has no JVM, they use only what
Connect offers: DataFrame reads and writes, session artifacts, operation tags, progress handlers
and the ML helper's overwrite. No other module of sparktf touches ``sparkContext``, ``_jvm``,
``_jdf``, RDDs, broadcast variables or accumulators (a test walks the source to keep it so).

Differences a user sees over Connect: a model written over Connect is stored as a one-row
Parquet folder holding the file's bytes instead of the bare file (both load in either mode);
shared values stay in the session's artifacts until the session ends, where a broadcast is
released after the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("sparktf")

__all__ = [
    "LastShared",
    "Shared",
    "TaskFailure",
    "barrier_peers",
    "classic_session_running",
    "delete_path",
    "driver_heap_bytes",
    "is_connect",
    "list_files",
    "path_status",
    "read_bytes",
    "run_on_workers",
    "run_tasks",
    "session_key",
    "set_log_level",
    "share",
    "task_slots",
    "write_bytes",
]

# Result bytes travel back in rows of at most this size (a model can be larger than one row).
_CHUNK_BYTES = 8 * 2**20
_RESULT_SCHEMA = "index long, part int, data binary"
# A task that wants the whole job stopped raises an error whose text carries this marker.
_STOP_MARK = "[sparktf-stop]"


def is_connect(spark) -> bool:
    """Whether ``spark`` is a Spark Connect session (no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def session_key(spark) -> str:
    """An identity of the running session: a value shared under one key is valid while it is
    the same (a restarted SparkContext or a new Connect session gets a new key)."""
    if is_connect(spark):
        return f"connect:{spark.session_id}"
    sc = spark.sparkContext
    return f"classic:{id(sc)}:{sc.applicationId}"


# -- running tasks ------------------------------------------------------------------------------


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


# -- sharing a value with every worker ----------------------------------------------------------

# Values loaded from shared files in this Python process, newest last (a worker keeps few).
_LOADED: OrderedDict[str, Any] = OrderedDict()
_LOADED_LIMIT = 2
_loaded_lock = threading.Lock()
# Artifact names already added, per Connect session id.
_ADDED: dict[str, set[str]] = {}


class Shared:
    """A read-only value every task can read (``.value``), shipped once per worker."""

    def __init__(self, broadcast=None, name: str | None = None, value: Any = None) -> None:
        self._broadcast = broadcast
        self._name = name
        self._value = value  # the driver's own copy (Connect); not pickled into tasks

    def __getstate__(self) -> dict[str, Any]:
        return {"_broadcast": self._broadcast, "_name": self._name, "_value": None}

    @property
    def value(self) -> Any:
        if self._broadcast is not None:
            return self._broadcast.value
        if self._value is not None:
            return self._value
        return _load_shared(self._name)

    def release(self) -> None:
        """Free the broadcast's blocks (classic); artifacts live as long as the session."""
        if self._broadcast is not None:
            with contextlib.suppress(Exception):  # the context may already be stopped
                self._broadcast.unpersist()
        self._value = None


class LastShared:
    """The last value a stage shared, reused while the session and the value's key stay the
    same: a stage keeps one, so transforming again ships nothing new (one path for the
    classifier's model and the transformer's)."""

    def __init__(self) -> None:
        self._last: tuple[str, str, Shared] | None = None

    def get(self, spark, key: str, value: Any) -> Shared:
        """The shared ``value`` known by ``key`` in ``spark``'s session, shipped if it is new."""
        session = session_key(spark)
        if self._last is None or self._last[:2] != (session, key):
            self._last = (session, key, share(spark, value))
        return self._last[2]


def _load_shared(name: str) -> Any:
    with _loaded_lock:
        if name in _LOADED:
            _LOADED.move_to_end(name)
            return _LOADED[name]
        from pyspark import SparkFiles

        with open(SparkFiles.get(name), "rb") as handle:
            value = pickle.load(handle)
        _LOADED[name] = value
        while len(_LOADED) > _LOADED_LIMIT:
            _LOADED.popitem(last=False)
        return value


def share(spark, value: Any) -> Shared:
    """Ship ``value`` to every worker once; tasks read it as ``shared.value``."""
    if not is_connect(spark):
        return Shared(broadcast=spark.sparkContext.broadcast(value))
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"sparktf-{hashlib.sha256(payload).hexdigest()[:40]}.pkl"
    added = _ADDED.setdefault(str(spark.session_id), set())
    if name not in added:
        folder = tempfile.mkdtemp(prefix="sparktf-share-")
        path = os.path.join(folder, name)
        try:
            with open(path, "wb") as handle:
                handle.write(payload)
            spark.addArtifacts(path, file=True)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
                os.rmdir(folder)
        added.add(name)
    return Shared(name=name, value=value)


# -- files under any path Spark can reach -------------------------------------------------------


def _hadoop_path(spark, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, jpath


def _missing(exc: Exception) -> bool:
    text = str(exc)
    return "PATH_NOT_FOUND" in text or "does not exist" in text


def _binary_files(spark, path: str):
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(path)
        .select("path", "length")
    )


def _uri_path(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path.rstrip("/") if "://" in uri or uri.startswith("file:") else uri


def write_bytes(spark, path: str, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` on any filesystem Spark can write to.

    Over Connect the bytes are written as a one-row Parquet folder at ``path`` (column
    ``content``), which :func:`read_bytes` reads like a file in either mode.
    """
    if is_connect(spark):
        frame = spark.createDataFrame([(bytearray(data),)], "content binary").coalesce(1)
        frame.write.mode("overwrite" if overwrite else "errorifexists").parquet(path)
        return
    fs, jpath = _hadoop_path(spark, path)
    stream = fs.create(jpath, overwrite)
    try:
        chunk = 16 * 1024 * 1024
        for start in range(0, len(data), chunk):
            stream.write(bytearray(data[start : start + chunk]))
    finally:
        stream.close()


def read_bytes(spark, path: str) -> bytes:
    """Read the whole file at ``path`` (or a folder written by :func:`write_bytes` over
    Connect) from any filesystem Spark can read."""
    status = path_status(spark, path)
    if status is None:
        raise FileNotFoundError(f"No such file: {path}")
    if status == "dir":
        rows = spark.read.parquet(path).select("content").collect()
        if len(rows) != 1:
            raise IsADirectoryError(f"{path} is a folder, not a file sparktf wrote")
        return bytes(rows[0][0])
    if not is_connect(spark):
        local = _local_path(*_hadoop_path(spark, path))
        if local is not None:
            with open(local, "rb") as handle:
                return handle.read()
    # Through a Spark job: py4j would turn a byte[] into Python one byte at a time (about 1 s
    # per 12 MB), while collected rows arrive as whole buffers.
    rows = spark.read.format("binaryFile").load(path).select("content").collect()
    if len(rows) != 1:
        raise FileNotFoundError(
            f"Spark lists no readable file at {path} (names starting with '_' or '.' are hidden "
            "from Spark's file sources)"
        )
    return bytes(rows[0][0])


def _local_path(fs, jpath) -> str | None:
    """The path on this machine's disk of a Hadoop path on the local filesystem, else None."""
    uri = fs.makeQualified(jpath).toUri()
    if uri.getScheme() != "file":
        return None
    return uri.getPath()


def path_status(spark, path: str) -> str | None:
    """``"file"``, ``"dir"`` or None (missing) for ``path`` on any filesystem Spark can read."""
    if is_connect(spark):
        try:
            rows = _binary_files(spark, path).limit(2).collect()
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        single = len(rows) == 1 and _uri_path(rows[0]["path"]) == _uri_path(path).rstrip("/")
        return "file" if single else "dir"
    fs, jpath = _hadoop_path(spark, path)
    if not fs.exists(jpath):
        return None
    return "dir" if fs.getFileStatus(jpath).isDirectory() else "file"


def list_files(spark, path: str) -> list[str]:
    """Paths, relative to the directory ``path`` and ``/``-separated, of all files below it."""
    if is_connect(spark):
        root = _uri_path(path).rstrip("/")
        found = [_uri_path(row["path"]) for row in _binary_files(spark, path).collect()]
        return sorted(name[len(root) :].lstrip("/") for name in found)
    fs, jpath = _hadoop_path(spark, path)
    root = fs.getFileStatus(jpath).getPath().toUri().getPath().rstrip("/")
    found = fs.listFiles(jpath, True)
    names = []
    while found.hasNext():
        full = found.next().getPath().toUri().getPath()
        names.append(full[len(root) :].lstrip("/"))
    return sorted(names)


def delete_path(spark, path: str) -> None:
    """Remove the file or folder ``path`` (recursively) on any filesystem Spark can write to."""
    if is_connect(spark):
        from pyspark.ml.util import invoke_helper_attr

        invoke_helper_attr("handleOverwrite", path, True)
        return
    fs, jpath = _hadoop_path(spark, path)
    fs.delete(jpath, True)


# -- the driver ---------------------------------------------------------------------------------


def _memory_bytes(text: str) -> int | None:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = text.strip().lower().rstrip("b")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text) * 2**20  # Spark reads a bare number as MiB
    except ValueError:
        return None


def driver_heap_bytes(spark) -> int | None:
    """The driver JVM's maximum heap; over Connect the server's ``spark.driver.memory``."""
    try:
        if is_connect(spark):
            return _memory_bytes(spark.conf.get("spark.driver.memory", "1g") or "1g")
        return int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())
    except Exception:
        return None


def classic_session_running() -> bool:
    """Whether this process already runs a (classic) SparkContext."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def set_log_level(spark, level: str) -> None:
    """Spark's own log level (classic sessions; a Connect server keeps its own)."""
    if not is_connect(spark):
        spark.sparkContext.setLogLevel(level)
