"""TensorFlow set-up inside a Spark task (executor side).

Everything here imports TensorFlow lazily and holds no Spark driver object, so it can be pickled
into tasks and imported by ``import sparktf`` without loading TensorFlow.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

logger = logging.getLogger("sparktf")

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


def task_partition() -> int | None:
    """The partition the current Spark task computes, or None off a task."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        return None if ctx is None else int(ctx.partitionId())
    except Exception:
        return None


def choose_gpus(
    physical: int, assigned: Sequence[str], partition: int | None
) -> tuple[list[int] | None, str]:
    """Which of the ``physical`` GPUs TensorFlow sees in this process, and why.

    Returns GPU indices, or None for TensorFlow's default (every GPU visible). GPUs Spark
    assigned to the task (``assigned``, its GPU addresses) are used when they name visible GPUs.
    A task without an assignment (local mode, or no ``spark.task.resource.gpu.amount``) gets
    one GPU picked by its ``partition``, so concurrent tasks spread over the GPUs instead of
    all running on the first. Off a task (the driver), TensorFlow's default stands.

    >>> choose_gpus(2, ["1"], partition=0)[0], choose_gpus(2, [], partition=5)[0]
    ([1], [1])
    >>> choose_gpus(2, [], partition=None)[0] is None, choose_gpus(0, ["0"], partition=1)[0]
    (True, [])
    """
    if physical <= 0:
        return [], "the CPU (no GPU visible)"
    if assigned:
        wanted = [int(a) for a in assigned if str(a).strip().isdigit()]
        chosen = sorted({i for i in wanted if i < physical})
        if chosen:
            return chosen, f"GPU(s) {chosen} assigned by Spark"
        return None, (
            f"all {physical} visible GPUs: Spark assigned GPU address(es) {list(assigned)}, "
            "which do not name visible GPUs"
        )
    if partition is None:
        return None, f"all {physical} visible GPUs (TensorFlow's default; not in a Spark task)"
    pick = partition % physical
    return [pick], f"GPU {pick} of {physical}, by partition {partition} (Spark assigned none)"


def configure_tensorflow(threads: int | None = None, gpus: list[str] | None = None):
    """Import TensorFlow with its thread pools sized for this task and return the module.

    ``threads`` defaults to the task's CPUs. TensorFlow fixes its thread pools when its runtime
    starts, so in a reused Python worker the first task's setting stays in force; tasks of one
    application all get the same ``spark.task.cpus``, so that is the setting they asked for.
    The GPUs TensorFlow sees follow :func:`choose_gpus` (``gpus`` overrides the task's
    assigned addresses), with memory growth on; the choice is logged (logger ``sparktf``, info)
    and, like the threads, fixed by the first task of a Python worker.
    """
    with _configured_lock:
        if "tf" in _configured:  # called for every batch: answer from the cache first
            return _configured["tf"]
        threads = threads or task_cpus()
        gpus = task_gpus() if gpus is None else gpus
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
        from sparktf._quiet import import_tensorflow

        tf = import_tensorflow()  # without the notices TensorFlow prints while loading

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            pass  # runtime already started in this process (e.g. by the user's own code)
        _configure_gpus(tf, gpus, task_partition())
        _configured["tf"] = tf
        _configured["threads"] = threads
        return tf


def _configure_gpus(tf, assigned: Sequence[str], partition: int | None) -> None:
    try:
        physical = tf.config.list_physical_devices("GPU")
    except RuntimeError:
        physical = []
    indices, reason = choose_gpus(len(physical), assigned, partition)
    try:
        if indices is not None and physical:
            visible = [physical[i] for i in indices]
            tf.config.set_visible_devices(visible, "GPU")
        else:
            visible = physical
        for device in visible:
            tf.config.experimental.set_memory_growth(device, True)
    except RuntimeError as exc:  # the runtime already started: its devices stay as they are
        reason = f"the devices TensorFlow had already set up ({exc})"
    logger.info("TensorFlow in process %d uses %s", os.getpid(), reason)


def configured_threads() -> int | None:
    """The intra-op thread count chosen by :func:`configure_tensorflow` in this process."""
    return _configured.get("threads")  # type: ignore[return-value]
