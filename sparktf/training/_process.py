"""What every training process of a multi-worker fit does for itself, started fresh or forked
(:mod:`sparktf.training._collective`, :mod:`sparktf.training._warm`): it takes a name that
``ps`` and ``top`` show, and it ends when the process that started it ends; and the environment
a Python worker gives the processes it starts."""

from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["PROCESS_NAME", "child_environment", "set_name", "watch_parent"]

#: The training processes' name (``/proc/PID/comm``, ``ps -o comm``), fresh or forked.
PROCESS_NAME = b"sparktf-train"


def child_environment() -> dict[str, str]:
    """This Python worker's environment for a process it starts: what the worker imports from
    (Spark's own zip files, a session's artifacts) reaches the child too, wherever it came from,
    and TensorFlow's start-up notices stay hidden unless a level was set."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def set_name(name: bytes) -> None:
    """Name this process (Linux; elsewhere nothing happens)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, name, 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def watch_parent() -> None:
    """End this process when the process that started it ends (killed or finished)."""
    parent = os.getppid()
    try:  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(1.0)

    threading.Thread(target=watch, name="sparktf-parent-watch", daemon=True).start()
