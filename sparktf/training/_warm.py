"""Warm starts of the training processes of a multi-worker fit: forked from a process that has
imported TensorFlow, rather than started fresh.

Every task of a multi-worker fit runs its TensorFlow worker in a process of its own
(:mod:`sparktf.training._collective`): the collectives must be set up before TensorFlow's runtime
starts. A fresh process pays TensorFlow's import, several seconds of CPU, every fit. Instead, the
first multi-worker task in a Spark Python worker starts a *warm process* beside it (this module,
``python -m sparktf.training._warm``): it imports TensorFlow and Keras, never starts their
runtime, and forks one training process per task on request, which starts with TensorFlow loaded
and sets its runtime up for its own cluster. The warm process lives as long as the Python worker
that started it (it ends with it, as each training process ends with its warm process), so a
reused Python worker starts its later fits' processes in a fraction of a second.

The request names three file descriptors, passed over a Unix socket: the job's pipe (standard
input), the log (standard output and error) and the result's pipe, so the training process works
exactly as a fresh one does. It also carries the task's environment and ``sys.path`` (a later
task may see a session's files the first did not). Where fork is not what the platform offers
(only Linux is used), where the warm process cannot start or has died, or where
``SPARKTF_WARM_WORKERS=0`` is in the executors' environment, the task starts a fresh process as
before. The cost: a warm process holds TensorFlow's import (a few hundred MB, mostly shared
library pages) for as long as its Python worker lives.
"""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import sys
import threading
from typing import Any

from sparktf.training._process import child_environment

__all__ = ["WARM_ENV", "WarmProcess", "WarmUnavailable", "forget", "warm_process"]

#: The executors' environment variable that turns warm starts off ("0").
WARM_ENV = "SPARKTF_WARM_WORKERS"
_MESSAGE = 1 << 20  # a request: the task's environment and sys.path
# How long a new warm process may take to import TensorFlow.
_READY_SECONDS = 300.0

_lock = threading.Lock()
_current: WarmProcess | None = None


class WarmUnavailable(Exception):
    """No warm process can start this training process: start a fresh one."""


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors it carries; ``(None, [])`` at the socket's end."""
    data, ancillary, _, _ = sock.recvmsg(_MESSAGE, socket.CMSG_SPACE(8 * 4))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            held = array.array("i")
            held.frombytes(payload[: len(payload) - len(payload) % held.itemsize])
            fds.extend(held)
    return (json.loads(data) if data else None), fds


class WarmProcess:
    """The warm process of this Python worker, seen from the worker."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = child_environment()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sparktf.training._warm", str(theirs.fileno())],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self.sock = mine
        try:
            mine.settimeout(_READY_SECONDS)
            ready, _ = _receive(mine)  # after TensorFlow's import
            mine.settimeout(None)
        except OSError:
            ready = None
        if not ready or not ready.get("ready"):
            self.close()
            raise WarmUnavailable("the warm process did not start")

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, env: dict[str, str], log_fd: int, result_fd: int, job_fd: int) -> int:
        """Fork a training process reading its job from ``job_fd``, logging to ``log_fd`` and
        writing its result to ``result_fd``, with ``env``; its PID."""
        request = {"env": env, "path": [p for p in sys.path if p]}
        try:
            _send(self.sock, request, [job_fd, log_fd, result_fd])
            reply, _ = _receive(self.sock)
        except OSError as exc:
            raise WarmUnavailable(f"the warm process is gone: {exc}") from None
        if not reply or "pid" not in reply:
            raise WarmUnavailable(f"the warm process did not fork: {reply}")
        return int(reply["pid"])

    def wait(self) -> int:
        """The exit code of the training process last started (negative: its signal)."""
        try:
            reply, _ = _receive(self.sock)
        except OSError:
            reply = None
        return int(reply["code"]) if reply and "code" in reply else -9

    def close(self) -> None:
        self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def warm_process() -> WarmProcess | None:
    """This Python worker's warm process (started on first use), or None where warm starts are
    off or unavailable."""
    global _current
    if os.environ.get(WARM_ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return None
    with _lock:
        if _current is not None and not _current.alive():
            _current.close()
            _current = None
        if _current is None:
            try:
                _current = WarmProcess()
            except (OSError, WarmUnavailable):
                return None
        return _current


def forget(process: WarmProcess) -> None:
    """Stop using ``process`` (it failed a request): the next task starts a new one."""
    global _current
    with _lock:
        if _current is process:
            _current = None
    process.close()


# -- the warm process ---------------------------------------------------------------------------


def _child(request: dict[str, Any], fds: list[int], control: int) -> None:
    """In the forked training process: take the task's descriptors, environment and path, and
    run :func:`sparktf.training._collective.main`. Never returns."""
    code = 1
    try:
        job_fd, log_fd, result_fd = fds
        os.close(control)
        os.dup2(job_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(job_fd)
        os.close(log_fd)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["path"]
        from sparktf.training import _collective

        _collective.WARM = True
        code = _collective.main([str(result_fd)])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(control: int) -> None:
    """Import TensorFlow, say so, then fork a training process per request until the worker
    that started this process ends (its socket closes) or dies (this process is killed)."""
    from sparktf.training._process import watch_parent

    watch_parent()  # this process ends with the Python worker that started it
    sock = socket.socket(fileno=control)
    from sparktf._quiet import import_tensorflow

    import_tensorflow()  # the import only: the runtime starts in each training process
    import keras  # noqa: F401

    import sparktf.training._collective  # noqa: F401

    _send(sock, {"ready": True})
    while True:
        request, fds = _receive(sock)
        if request is None:
            return
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            _send(sock, {"error": f"expected 3 descriptors, got {len(fds)}"})
            continue
        pid = os.fork()
        if pid == 0:
            _child(request, fds, control)
        for fd in fds:
            os.close(fd)
        _send(sock, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(sock, {"code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve(int(sys.argv[1]))
