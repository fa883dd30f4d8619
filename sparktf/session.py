"""A local SparkSession that works out of the box.

:func:`get_spark` is what the ``sparktf`` command, the examples and the test suite use. It makes
the settings that trip up a first run explicit:

* Python workers run the driver's own interpreter (``PYSPARK_PYTHON``), so a virtual environment
  with TensorFlow installed is what the executors see too;
* Arrow is enabled for ``toPandas`` and pandas UDFs;
* the notices TensorFlow and the JVM print when they start, and Spark's INFO logs, are
  silenced (Spark's warnings and errors are not; see :mod:`sparktf._quiet`);
* a local master retries a task whose Python worker died, up to 4 attempts, as a cluster
  does (:func:`with_task_retries`);
* a local session gets a driver heap sized from the machine's memory (half of it, between 1 and
  8 GiB) instead of Spark's 1 GiB, unless the user set ``spark.driver.memory`` in ``conf``, in
  ``SPARK_DRIVER_MEMORY``, in ``PYSPARK_SUBMIT_ARGS`` or in ``spark-defaults.conf``: the driver
  of a local master also runs every task, and a fit collects its training data there.

On a real cluster, pass ``master="spark://host:7077"`` (or build the session yourself: sparktf
needs nothing beyond an ordinary SparkSession). To reach a cluster through Spark Connect, pass
``remote="sc://host:15002"`` (or set ``SPARK_REMOTE``); ``remote="local[2]"`` starts a local
Connect server inside this process.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping

from sparktf._local_connect import client_port, local_server_conf
from sparktf._pools import close_idle_thread_pools  # noqa: F401  (its home before)
from sparktf._quiet import connect_settings_quiet, jvm_stderr_filtered, startup_hidden
from sparktf._spark import classic_session_running
from sparktf.errors import JavaNotFoundError

logger = logging.getLogger("sparktf")

__all__ = [
    "DEFAULT_MASTER",
    "JavaNotFoundError",
    "check_java",
    "check_master",
    "get_spark",
    "with_task_retries",
]

DEFAULT_MASTER = "local[*]"


def check_java() -> str:
    """Return the ``java`` executable Spark will use, or raise :class:`JavaNotFoundError`."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("java")
    if found is None:
        raise JavaNotFoundError(
            "Spark needs a Java runtime (Java 17 or newer for Spark 4), but none was found: "
            "JAVA_HOME is not set and 'java' is not on PATH. Install one (e.g. "
            "'apt-get install openjdk-17-jre-headless') or set JAVA_HOME."
        )
    return found


def _worker_environment(startup_logs: bool) -> None:
    # Executors started by a local master inherit the driver's environment.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if startup_logs:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


_MASTER_PATTERNS = (
    r"local",
    r"local\[(\d+|\*)\]",
    r"local\[(\d+|\*),\s*\d+\]",
    r"local-cluster\[\d+,\s*\d+,\s*\d+\]",
    r"spark://[^/\s]+:\d+(,[^/\s]+:\d+)*",
    r"yarn",
    r"k8s://\S+",
)


def check_master(master: str, timeout: float = 5.0) -> None:
    """Refuse a master URL Spark would not understand, and a standalone master nobody answers
    at, before starting the JVM: both otherwise end in Java stack traces (the unreachable one
    after a minute of retries)."""
    if not any(re.fullmatch(pattern, master) for pattern in _MASTER_PATTERNS):
        raise ValueError(
            f"Not a Spark master URL: {master!r}. Use local, local[N], local[*], "
            "local-cluster[executors,cores,MiB], spark://host:port, yarn or k8s://host:port."
        )
    if not master.startswith("spark://"):
        return
    import socket

    failures = []
    for address in master[len("spark://") :].split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except OSError as exc:
            failures.append(f"{address}: {exc.strerror or exc}")
    raise ConnectionError(
        f"No Spark master answers at {master} ({'; '.join(failures)}). Start the master, or "
        "check the host and port (the master's web UI shows its spark:// URL)."
    )


#: How often a local master tries a task whose Python worker died (a cluster's
#: ``spark.task.maxFailures`` default); a failed trial is a result, never a retry.
LOCAL_TASK_ATTEMPTS = 4


def with_task_retries(master: str) -> str:
    """A local master that retries a lost task as a cluster does: ``local[N]`` ->
    ``local[N,4]`` (Spark's local mode ignores ``spark.task.maxFailures`` and tries a task
    once; the second number of ``local[N,F]`` is its attempts). Other masters, and a local
    master that names its attempts, are returned unchanged.

    >>> with_task_retries("local[*]"), with_task_retries("local"), with_task_retries("local[2,1]")
    ('local[*,4]', 'local[1,4]', 'local[2,1]')
    """
    if master == "local":
        return f"local[1,{LOCAL_TASK_ATTEMPTS}]"
    found = re.fullmatch(r"local\[(\d+|\*)\]", master)
    if found:
        return f"local[{found.group(1)},{LOCAL_TASK_ATTEMPTS}]"
    return master


def _local_master(master: str) -> bool:
    return master.startswith("local")


_GIB = 1024**3
_MAX_AUTO_DRIVER_GIB = 8


def physical_memory_bytes() -> int | None:
    """The memory this process may use: the machine's RAM, or a smaller cgroup (container)
    limit; None where neither can be read."""
    try:
        total = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        total = None
    for limit_file in (
        "/sys/fs/cgroup/memory.max",  # cgroup v2
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1
    ):
        try:
            with open(limit_file) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):
            total = int(text)
    return total


def auto_driver_memory(total_bytes: int | None) -> str | None:
    """``spark.driver.memory`` for a local session: half the machine's RAM, 1 to 8 GiB."""
    if not total_bytes:
        return None
    gib = max(1, min(_MAX_AUTO_DRIVER_GIB, int(total_bytes / 2 // _GIB)))
    return f"{gib}g"


def _conf_dir() -> str | None:
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if not conf_dir:
        try:
            from pyspark.find_spark_home import _find_spark_home

            conf_dir = os.path.join(_find_spark_home(), "conf")
        except Exception:
            return None
    return conf_dir


def _in_spark_defaults(key: str) -> bool:
    """Whether ``spark-defaults.conf`` (of ``SPARK_CONF_DIR`` or Spark's home) sets ``key``."""
    conf_dir = _conf_dir()
    try:
        with open(os.path.join(conf_dir or "", "spark-defaults.conf")) as handle:
            # Keys are separated from values by whitespace, '=' or ':'.
            return any(re.split(r"[\s=:]", line.strip(), maxsplit=1)[0] == key for line in handle)
    except OSError:
        return False


def _driver_memory_set_by_user(conf: Mapping[str, str] | None) -> bool:
    if conf and "spark.driver.memory" in conf:
        return True
    if os.environ.get("SPARK_DRIVER_MEMORY"):
        return True
    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if "--driver-memory" in submit_args or "spark.driver.memory" in submit_args:
        return True
    return _in_spark_defaults("spark.driver.memory")


def log4j_options(conf: Mapping[str, str] | None) -> str | None:
    """``spark.driver.extraJavaOptions`` giving the driver sparktf's log4j settings
    (:data:`sparktf._quiet.LOG4J_CONFIG`), or None where the user configured the logging or
    the driver's Java options elsewhere: a log4j2 file in the Spark configuration folder, a
    log4j option in ``conf``, ``PYSPARK_SUBMIT_ARGS``, ``SPARK_SUBMIT_OPTS`` or
    ``JAVA_TOOL_OPTIONS``, or driver Java options in ``spark-defaults.conf`` (which a setting
    here would replace)."""
    from pathlib import Path

    from sparktf._quiet import LOG4J_CONFIG

    given = (conf or {}).get("spark.driver.extraJavaOptions", "")
    elsewhere = [os.environ.get(k, "") for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS")]
    if any(
        "log4j" in text for text in [given, *elsewhere, os.environ.get("JAVA_TOOL_OPTIONS", "")]
    ):
        return None
    submit = elsewhere[0]
    if "extraJavaOptions" in submit or "--driver-java-options" in submit:
        return None
    if _in_spark_defaults("spark.driver.extraJavaOptions"):
        return None
    conf_dir = _conf_dir()
    if conf_dir and any(
        name.startswith("log4j2")
        for name in (os.listdir(conf_dir) if os.path.isdir(conf_dir) else ())
    ):
        return None
    option = f"-Dlog4j2.configurationFile={Path(LOG4J_CONFIG).as_uri()}"
    return f"{given} {option}".strip()


def get_spark(
    master: str | None = None,
    app_name: str = "sparktf",
    conf: Mapping[str, str] | None = None,
    log_level: str = "WARN",
    preload_tensorflow: bool = False,
    remote: str | None = None,
    startup_logs: bool = False,
):
    """Return a SparkSession ready for sparktf, creating it if needed.

    Parameters
    ----------
    master:
        Spark master URL. Defaults to ``$SPARKTF_MASTER`` or ``local[*]``. Use
        ``local-cluster[2,1,1024]`` for separate executor processes on one machine, or
        ``spark://host:7077`` for a standalone cluster.
    app_name:
        Application name shown in the Spark UI.
    conf:
        Extra Spark settings, e.g. ``{"spark.task.cpus": "2"}``. A local master's driver
        memory defaults to half the machine's RAM (1 to 8 GiB); ``spark.driver.memory`` here
        overrides it.
    log_level:
        Log level of Spark's own loggers.
    startup_logs:
        Show the notices TensorFlow and the JVM print when they start (hidden by default, see
        :mod:`sparktf._quiet`): sets ``TF_CPP_MIN_LOG_LEVEL=0`` for the driver and the
        executors, and leaves Spark's log4j defaults in place. ``TF_CPP_MIN_LOG_LEVEL=0`` set
        by the user does the same.
    preload_tensorflow:
        Start each executor's Python daemon with TensorFlow already imported
        (``spark.python.daemon.module=sparktf.daemon``, see :mod:`sparktf.daemon`): workers
        forked from it skip their own import and share its memory. Takes effect only when this
        call creates the session.
    remote:
        A Spark Connect URL (``sc://host:15002``), or ``local[N]`` for a Connect server started
        in this process, on a free port (or on ``spark.connect.grpc.binding.port`` of
        ``conf``). Defaults to ``$SPARK_REMOTE``; when set, ``master`` is not used. Over
        Connect the client starts no JVM: static settings (``spark.driver.memory``, the
        executors' environment) belong to the server, except for a local server started here.

    If a session is already active it is returned as it is (Spark allows one per driver), with
    ``conf`` applied where Spark allows changing a setting at run time.
    """
    remote = remote or os.environ.get("SPARK_REMOTE")
    if remote and not remote.startswith("local"):
        return _connect(remote, app_name, conf)
    _check_classic_pyspark()
    check_java()
    _worker_environment(startup_logs)
    master = master or os.environ.get("SPARKTF_MASTER") or DEFAULT_MASTER
    port = None
    if remote:  # a local Connect server in this process, configured like a local session
        master = remote
        conf, port = local_server_conf(conf)  # on a port of its own (sparktf._local_connect)
    if not classic_session_running():
        check_master(master)
    if not remote:
        master = with_task_retries(master)
    if _local_master(master):
        # Everything runs on this machine: bind to loopback, not to whatever interface is up.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = _builder(master, remote, app_name, conf, preload_tensorflow)
    fresh = not classic_session_running()
    if _local_master(master) and fresh and not _driver_memory_set_by_user(conf):
        memory = auto_driver_memory(physical_memory_bytes())
        if memory:
            logger.debug("local session: spark.driver.memory=%s (from the machine's RAM)", memory)
            builder = builder.config("spark.driver.memory", memory)
    hidden = fresh and startup_hidden()
    options = log4j_options(conf) if hidden else None
    if options:
        builder = builder.config("spark.driver.extraJavaOptions", options)
    with jvm_stderr_filtered(hidden), connect_settings_quiet(bool(remote)), client_port(port):
        spark = builder.getOrCreate()
    from sparktf._spark import set_log_level

    set_log_level(spark, log_level)
    return spark


def _builder(
    master: str, remote: str | None, app_name: str, conf: Mapping[str, str] | None, preload: bool
):
    """The session builder of :func:`get_spark`: sparktf's settings, then the user's ``conf``."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(master) if remote else SparkSession.builder.master(master)
    builder = (
        builder.appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", os.environ.get("SPARKTF_UI", "false"))
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", os.environ["TF_CPP_MIN_LOG_LEVEL"])
        .config("spark.pyspark.python", sys.executable)
        # a barrier stage (numWorkers > 1) that needs more slots than the cluster has fails in
        # seconds, not after Spark's default of 40 checks 15 s apart
        .config("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
        .config("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "3")
    )
    if master.startswith("local-cluster"):
        # Executors are separate JVMs; point them at the driver's interpreter and environment.
        builder = builder.config("spark.executorEnv.PATH", os.environ.get("PATH", ""))
    if preload:
        from sparktf.daemon import DAEMON_MODULE

        builder = builder.config("spark.python.daemon.module", DAEMON_MODULE)
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    return builder


def _check_classic_pyspark() -> None:
    """A classic session needs Spark's jars; the ``pyspark-client`` package has none."""
    import pyspark

    if os.environ.get("SPARK_HOME"):
        return
    if not os.path.isdir(os.path.join(os.path.dirname(pyspark.__file__), "jars")):
        raise RuntimeError(
            "This pyspark installation has no Spark jars (it is the Spark Connect client only, "
            "e.g. the 'pyspark-client' package), so it cannot start Spark here. Connect to a "
            "Spark Connect server instead: get_spark(remote='sc://host:15002'), "
            "'sparktf ... --remote sc://host:15002' or SPARK_REMOTE=sc://host:15002; or "
            "install the full 'pyspark' package."
        )


def _connect(remote: str, app_name: str, conf: Mapping[str, str] | None):
    """A Spark Connect session to a server elsewhere: only run-time settings can be given."""
    try:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(remote).appName(app_name)
        for key, value in (conf or {}).items():
            builder = builder.config(key, str(value))
        return builder.getOrCreate()
    except ImportError as exc:
        raise ImportError(
            f"Spark Connect needs pyspark's Connect client ({exc}); install it with "
            "'pip install \"pyspark[connect]\"'."
        ) from exc
