"""TensorFlow set-up inside a Spark task (executor side).

Everything here imports TensorFlow lazily and holds no Spark driver object, so it can be pickled
into tasks and imported by ``import sparktf`` without loading TensorFlow.
"""

from __future__ import annotations

import os
import threading

_configured_lock = threading.Lock()
_configured: dict[str, object] = {}


def task_cpus(default: int | None = None) -> int:
    """CPUs Spark granted the current task (``spark.task.cpus``), or ``default`` off a task."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
    except Exception:  # pragma: no cover - pyspark always importable where this runs
        ctx = None
    if ctx is not None:
        try:
            return max(1, int(ctx.cpus()))
        except Exception:  # pragma: no cover - very old pyspark
            pass
    return default if default is not None else (os.cpu_count() or 1)


def task_gpus() -> list[str]:
    """GPU addresses Spark assigned to the current task (``TaskContext.resources()``)."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is None:
            return []
        gpu = ctx.resources().get("gpu")
        return list(gpu.addresses) if gpu is not None else []
    except Exception:
        return []


def configure_tensorflow(threads: int | None = None, gpus: list[str] | None = None):
    """Import TensorFlow with its thread pools sized for this task and return the module.

    ``threads`` defaults to the task's CPUs. TensorFlow fixes its thread pools when its runtime
    starts, so in a reused Python worker the first task's setting stays in force; tasks of one
    application all get the same ``spark.task.cpus``, so that is the setting they asked for.
    When the task holds GPUs, TensorFlow sees only those, with memory growth on; otherwise it
    runs on the CPU.
    """
    with _configured_lock:
        if "tf" in _configured:  # called for every batch: answer from the cache first
            return _configured["tf"]
        threads = threads or task_cpus()
        gpus = task_gpus() if gpus is None else gpus
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            pass  # runtime already started in this process (e.g. by the user's own code)
        try:
            physical = tf.config.list_physical_devices("GPU")
            if physical:
                wanted = {str(g) for g in gpus}
                chosen = [d for i, d in enumerate(physical) if str(i) in wanted]
                tf.config.set_visible_devices(chosen, "GPU")
                for device in chosen:
                    tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:
            pass
        _configured["tf"] = tf
        _configured["threads"] = threads
        return tf


def configured_threads() -> int | None:
    """The intra-op thread count chosen by :func:`configure_tensorflow` in this process."""
    return _configured.get("threads")  # type: ignore[return-value]
