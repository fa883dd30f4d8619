"""What sparktf does about start-up messages: TensorFlow's and the JVM's notices are hidden.

One setting decides, ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow's own: 0 shows everything; sparktf sets
2 unless it is set, in the driver and the executors' Python workers alike):

* TensorFlow prints some lines when its libraries load, before it reads that variable: absl's
  ``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``
  and ``I0000 ... port.cc:...] oneDNN custom operations are on ...``. :func:`import_tensorflow`
  imports TensorFlow with the process's standard error (file descriptor 2) captured, and writes
  back every line but those the variable asks to hide: absl's notice, and absl records below the
  level (``I`` for 1 and up, ``W`` for 2 and up, ``E`` for 3). Python warnings, errors and
  anything else printed meanwhile are written back unchanged. TensorFlow's warning about
  retracing, which any process training several models one after another gets, is dropped
  from its ``tensorflow`` logger too.
* The JVM of a session sparktf starts (:func:`sparktf.session.get_spark`) gets
  :data:`LOG4J_CONFIG`, unless the user configured log4j: Spark's warnings and errors in the
  usual format, without the notices Spark and Hadoop print when they start.
  :func:`jvm_stderr_filtered` drops the one line the Java launcher itself prints for the
  ``jdk.incubator.vector`` module that Spark always adds
  (``WARNING: Using incubator modules: jdk.incubator.vector``): no Java option turns it off.

Nothing here imports TensorFlow or Spark.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator

__all__ = [
    "LOG4J_CONFIG",
    "connect_settings_quiet",
    "import_tensorflow",
    "jvm_stderr_filtered",
    "keep_tensorflow_line",
    "startup_hidden",
]

#: The log4j 2 settings of a Spark driver sparktf starts (see the file for what it hides).
LOG4J_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")

_ABSL_NOTICE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
# An absl log record: severity, MMDD, time (TensorFlow's reads 00:00:<seconds since 1970>),
# thread id, file:line]
_ABSL_RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+\s+\d+ [\w./+-]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# The second line of TensorFlow's INFO record about the CPU instructions it was built for.
_CPU_NOTICE_TAIL = "To enable the following instructions:"
#: What the Java launcher prints when a module like jdk.incubator.vector is added.
JVM_INCUBATOR_NOTICE = b"WARNING: Using incubator modules: "


def tf_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as a number (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def startup_hidden() -> bool:
    """Whether start-up notices are hidden: ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more."""
    return tf_log_level() >= 1


def keep_tensorflow_line(line: str, level: int) -> bool:
    """Whether a line TensorFlow printed while loading is shown at ``TF_CPP_MIN_LOG_LEVEL=level``.

    >>> keep_tensorflow_line("I0000 00:00:1795796134.237473   21345 port.cc:153] oneDNN ...", 2)
    False
    >>> keep_tensorflow_line("E0000 00:00:1795796134.237473   21345 cuda.cc:9] failed call", 2)
    True
    >>> keep_tensorflow_line("UserWarning: something", 3), keep_tensorflow_line(_ABSL_NOTICE, 0)
    (True, True)
    """
    if level < 1:
        return True
    text = line.rstrip("\r\n")
    if text == _ABSL_NOTICE or text.startswith(_CPU_NOTICE_TAIL):
        return False
    record = _ABSL_RECORD.match(text)
    return record is None or _SEVERITY[record.group(1)] >= level


@contextlib.contextmanager
def _stderr_to(target: int) -> Iterator[None]:
    """Point file descriptor 2 at ``target`` in the block; then flush ``sys.stderr`` and point
    the descriptor back at this process's standard error."""
    saved = os.dup(2)
    try:
        os.dup2(target, 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def _stderr_filtered(keep) -> Iterator[None]:
    """Capture file descriptor 2 in the block; then write back the lines ``keep`` accepts."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        try:
            with _stderr_to(capture.fileno()):
                yield
        finally:
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(True) if keep(line))
            if kept:
                os.write(2, kept.encode("utf-8"))


def import_tensorflow():
    """``import tensorflow``, without the notices TensorFlow prints while loading (see the
    module's description); returns the ``tensorflow`` module."""
    level = tf_log_level()
    if "tensorflow" not in sys.modules:
        hide = _stderr_filtered(lambda line: keep_tensorflow_line(line, level))
        with hide if level >= 1 else contextlib.nullcontext():
            import tensorflow  # noqa: F401
    tf_logger = logging.getLogger("tensorflow")
    if level >= 1 and not any(isinstance(f, _RetracingNotice) for f in tf_logger.filters):
        tf_logger.addFilter(_RetracingNotice())
    return sys.modules["tensorflow"]


class _RetracingNotice(logging.Filter):
    """Drops TensorFlow's ``N out of the last M calls to <function ...> triggered tf.function
    retracing`` warning. It counts traces by the function's code, so it fires in any process
    that trains about five Keras models: each new model traces its own training step once,
    which is what a worker running one trial after another does, not a mistake to fix."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


# The filter processes started, kept for the life of this process.
_RELAYS: list[subprocess.Popen] = []

_FILTER_PROGRAM = f"""
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # like the JVM: Ctrl-C is the driver's to handle
notice = {JVM_INCUBATOR_NOTICE!r}
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\\n")
    out = b"".join(line + b"\\n" for line in lines if not line.startswith(notice))
    if out:
        os.write(1, out)
if pending and not pending.startswith(notice):
    os.write(1, pending)
"""


@contextlib.contextmanager
def jvm_stderr_filtered(enabled: bool = True) -> Iterator[None]:
    """Start the JVM in this block with its standard error passed through a small filter
    process that drops the Java launcher's ``Using incubator modules`` notice, and nothing else.

    The JVM inherits file descriptor 2 when pyspark starts it; in the block that descriptor is
    the filter's input. The filter writes to this process's standard error and ends when the
    JVM does. Outside the block this process writes to its standard error directly.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    try:
        relay = subprocess.Popen(
            [sys.executable, "-c", _FILTER_PROGRAM], stdin=subprocess.PIPE, stdout=2
        )
    except OSError:  # no filter: the notice shows, nothing else changes
        yield
        return
    try:
        with _stderr_to(relay.stdin.fileno()):  # type: ignore[union-attr]
            yield
    finally:
        relay.stdin.close()  # type: ignore[union-attr]  (the JVM, if started, holds its copy)
        _RELAYS.append(relay)  # not collected while it runs (no "still running" warning)


@contextlib.contextmanager
def connect_settings_quiet(enabled: bool = True) -> Iterator[None]:
    """Start a local Spark Connect server in this block without a warning per setting.

    pyspark starts the server with every setting of the builder, then sets each again on the
    new session and warns for every one a session cannot change (``spark.driver.memory``,
    ``spark.ui.enabled``, ...): 7 warnings of 3 lines for the settings of
    :func:`~sparktf.session.get_spark`. The server has them already, so the block drops those
    warnings, and no others.
    """
    if not enabled:
        yield
        return
    with warnings.catch_warnings():
        for message in (
            r"Failed to set \S+ to .*CANNOT_MODIFY_(STATIC_)?CONFIG",
            r"The SQL config .* NOT",
        ):
            warnings.filterwarnings("ignore", message, UserWarning)
        yield
