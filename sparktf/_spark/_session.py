"""The session: Connect or classic, its identity, its driver."""

from __future__ import annotations


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
