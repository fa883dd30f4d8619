"""Everything sparktf asks of Spark beyond DataFrames, for classic sessions and Spark Connect.

The rest of the package talks to Spark only through DataFrames and these functions (of the
modules ``_tasks``, ``_shared``, ``_files`` and ``_session`` of this package):

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
destroyed after the job (a stage's model shipment, which a DataFrame planned earlier may still
read, is only unpersisted when the stage ships another).
"""

from __future__ import annotations

from sparktf._spark._files import delete_path, list_files, path_status, read_bytes, write_bytes
from sparktf._spark._session import (
    classic_session_running,
    driver_heap_bytes,
    is_connect,
    session_key,
    set_log_level,
)
from sparktf._spark._shared import LastShared, Shared, share
from sparktf._spark._tasks import (
    TaskFailure,
    barrier_peers,
    run_on_workers,
    run_tasks,
    task_slots,
)

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
