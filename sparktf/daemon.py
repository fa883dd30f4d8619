"""A Spark Python daemon that imports TensorFlow once per executor, before it forks workers.

Spark starts one Python daemon per executor and forks a Python worker from it for each task slot.
With the default daemon, every worker imports TensorFlow itself the first time a sparktf task
runs in it: several seconds of CPU and a few hundred MB of private memory per worker. With this
module as the daemon, the daemon imports TensorFlow (and Keras) once, and the forked workers
share those pages copy-on-write::

    spark-submit --conf spark.python.daemon.module=sparktf.daemon ...

or ``get_spark(preload_tensorflow=True)``. sparktf must be importable by the executors' Python
(it already must be, for its tasks to run). Only the import happens before the fork: TensorFlow's
runtime (thread pools, devices, GPUs) starts in each worker, sized for its task as usual. The
import does leave a few helper threads in the daemon (pyspark's own daemon forks with none), which
is why this is opt-in; the workers ran TensorFlow normally in sparktf's tests and benchmarks.
Every Python worker of the application then starts with TensorFlow loaded, so use it for
applications that run TensorFlow, not for a shared session that mostly runs other UDFs.
"""

from __future__ import annotations

import os
import sys

#: The value of ``spark.python.daemon.module`` that selects this daemon.
DAEMON_MODULE = "sparktf.daemon"


def preload() -> bool:
    """Import TensorFlow and Keras into this process; False (with the reason on stderr) when they
    cannot be imported, in which case the workers import them themselves as usual.

    Spark reads the daemon's port from its standard output, so anything the imports print there
    is sent to standard error instead.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        from sparktf._quiet import import_tensorflow

        import_tensorflow()  # without TensorFlow's loading notices
        import keras  # noqa: F401
    except Exception as exc:  # any import failure must leave the daemon, and every UDF, working
        print(f"sparktf.daemon: TensorFlow not preloaded: {exc!r}", file=sys.stderr)
        return False
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    return True


def main() -> None:
    """Preload TensorFlow, then run pyspark's own daemon loop (which forks the workers)."""
    preload()
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
