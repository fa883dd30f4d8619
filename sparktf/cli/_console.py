"""What the ``sparktf`` command shows: progress on stderr (through logging), results on stdout,
errors as one line, and the exit codes."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

#: Exit codes of the command (docs/cli.md lists them; tests/tools/test_cli.py checks that list).
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: Stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with the command line (bad value, missing path): exit code 2."""


class Console:
    """Progress (stderr, through logging) and results (stdout)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, text: str) -> None:
        if not self.quiet:
            logging.getLogger("sparktf.cli").info(text)

    @staticmethod
    def out(text: str = "") -> None:
        print(text, flush=True)


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time of each record."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(quiet: bool, verbose: bool = False) -> None:
    """INFO for sparktf's loggers on stderr (WARNING with --quiet, DEBUG with --verbose); others
    stay quiet. The start-up notices of TensorFlow and the JVM are hidden unless ``verbose``
    (``TF_CPP_MIN_LOG_LEVEL``, see :mod:`sparktf._quiet`), set here before either starts."""
    logger = logging.getLogger("sparktf")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    for name in ("py4j", "py4j.clientserver", "py4j.java_gateway"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def error_message(exc: BaseException) -> str:
    """One readable line (or a few) for an error raised while running."""
    name = type(exc).__name__
    if name == "Py4JJavaError":
        java = getattr(exc, "java_exception", None)
        text = str(java) if java is not None else str(exc)
        return text.strip().splitlines()[0] if text.strip() else name
    text = str(exc).strip()
    if name == "PythonException":
        return _worker_error(text) or name
    if name in ("AnalysisException", "PySparkException") or "pyspark" in type(exc).__module__:
        return text.splitlines()[0] if text else name
    if isinstance(exc, _PLAIN):
        return text or name
    return f"{name}: {text}" if text else name


#: Errors whose message is shown without their type's name.
_PLAIN = (FileNotFoundError, ValueError, TypeError, RuntimeError, OSError)


_TRACEBACK = "Traceback (most recent call last):"


def _worker_error(text: str) -> str | None:
    """The error a Spark task's Python worker raised, from the text Spark reports (classic, or
    Spark Connect with its ``SQLSTATE`` line): what follows the last traceback's frames, without
    the type's name for the errors of :data:`_PLAIN`; the last line when there is no traceback."""
    text = re.sub(r"\s*SQLSTATE: \w+\s*$", "", text.split("\nJVM stacktrace:")[0]).strip()
    if _TRACEBACK not in text:
        return text.splitlines()[-1].strip() if text else None
    lines = text.rsplit(_TRACEBACK, 1)[1].splitlines()[1:]
    # frames are indented ("  File ...", the code line, Python's "^^^" marks); the error is not
    start = next((i for i, line in enumerate(lines) if line and line[0] != " "), len(lines))
    tail = "\n".join(lines[start:]).strip()
    if not tail:
        return None
    kind, colon, message = tail.partition(": ")
    plain = {error.__name__ for error in _PLAIN}
    return message if colon and kind.rsplit(".", 1)[-1] in plain else tail
