"""The suite's driver jobs, run in the background while the in-process tests run.

A test that needs Spark in a process of its own (another master, a Spark Connect client, a fresh
command's start-up) reads the result of a *job*: a function that runs those processes and returns
what the test asserts on. Most of a job's time is spent starting a JVM and importing TensorFlow,
so :class:`BackgroundJobs` starts every job a selected test needs as soon as collection ends, at
most ``slots`` at a time, and a test waits only for its own job's result (through a session
fixture, see tests/conftest.py). Tests that wait on a job run last, in the order their jobs start,
so the in-process tests run meanwhile on the suite's ``local[2]`` session.

Every process a job starts is the leader of a process group of its own; whatever is still
running at the end of the session (a job a failing test left, an interrupted run) is killed with
its group: its JVM, executors and Python workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


class JobFailed(Exception):
    """A background job raised, timed out or printed no result."""


@dataclass(frozen=True)
class Job:
    """A background job: ``run(context)`` runs in a thread and returns the job's result; tests
    reach it through the session fixture named ``fixture``. ``niceness`` above 0 runs the job's
    processes at that nice level: the in-process tests (the run's longest path) get the CPU
    first, and the job takes what they leave, also once they run alone and use less than the
    machine."""

    name: str
    fixture: str
    run: Callable[[JobContext], Any]
    niceness: int = 0


def tail(text: str | None, chars: int = 3000) -> str:
    return (text or "")[-chars:]


class JobContext:
    """What a job's function gets: a folder of its own, the environment the session started
    with, and process starters whose processes the session can kill."""

    def __init__(self, jobs: BackgroundJobs, name: str, folder: Path) -> None:
        self._jobs = jobs
        self.name = name
        self.folder = folder

    def env(self, **changes: str | None) -> dict[str, str]:
        """The environment as the session started (not as a test may have patched it since),
        with ``changes`` applied (``None`` removes a name)."""
        env = dict(self._jobs.environ)
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def popen(self, argv: list[str], env: dict[str, str] | None = None, **kwargs) -> Any:
        """Start ``argv`` in a process group of its own, in the job's folder (not in whatever
        folder a test has moved to meanwhile)."""
        kwargs.setdefault("cwd", self.folder)
        niceness = self._jobs.jobs[self.name].niceness
        if niceness and shutil.which("nice"):
            argv = ["nice", "-n", str(niceness), *argv]  # nice execs argv: the PID is argv's
        process = subprocess.Popen(
            argv, env=env or self.env(), start_new_session=True, text=True, **kwargs
        )
        if niceness:
            _yield_session(process.pid, niceness)
        self._jobs.started(process)
        return process

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None):
        """Run ``argv`` to its end (``subprocess.CompletedProcess``, output captured); a run
        past ``timeout`` seconds is killed with its process group and fails the job."""
        process = self.popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            out, err = process.communicate()
            raise JobFailed(
                f"{' '.join(argv[1:3])} ran past its {timeout:.0f} s\n--- stdout\n{tail(out)}\n"
                f"--- stderr\n{tail(err)}"
            ) from None
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _yield_session(pid: int, niceness: int) -> None:
    """Give the new session led by ``pid`` the nice level ``niceness`` as a whole. Where Linux
    groups each session for its scheduler (``kernel.sched_autogroup_enabled``), the CPU is
    shared between sessions first, and a process's own nice level counts only within its
    session: each job, a session of its own, would get as much CPU as all the in-process tests."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as handle:
        handle.write(str(niceness))


def result_line(done: subprocess.CompletedProcess) -> dict:
    """The ``RESULT {...}`` JSON a job script printed last; fails with its output's tail if it
    exited with an error or printed none."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise JobFailed(
            f"{' '.join(map(str, done.args[1:3]))} exited with {done.returncode}\n"
            f"--- stdout\n{tail(done.stdout)}\n--- stderr\n{tail(done.stderr)}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def kill_group(process) -> None:
    """SIGKILL ``process``'s group (it leads one: the JVM, executors and workers it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class BackgroundJobs:
    """A pytest plugin: starts the jobs the selected tests need once collection ends."""

    def __init__(self, jobs: list[Job], slots: int = 2) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.by_fixture = {job.fixture: job.name for job in jobs}
        self.slots = slots
        self.environ: dict[str, str] = {}
        self.futures: dict[str, Future] = {}
        self.seconds: dict[str, float] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._processes: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._folder: str | None = None
        self._sigterm = None

    # -- which tests need which job ------------------------------------------------------------

    def needs(self, item) -> list[str]:
        """The jobs ``item`` waits on, in the order they start."""
        names = {
            self.by_fixture[f] for f in getattr(item, "fixturenames", ()) if f in self.by_fixture
        }
        return [name for name in self.jobs if name in names]

    def order(self, items: list) -> None:
        """Move the tests that wait on a job to the end, in the order their jobs start (stable:
        a module's tests stay in their order)."""
        rank = {name: i for i, name in enumerate(self.jobs)}
        waiting = [
            (rank[needs[-1]], i) for i, item in enumerate(items) if (needs := self.needs(item))
        ]
        moved = [items[i] for _, i in sorted(waiting)]
        keep = [item for item in items if not self.needs(item)]
        items[:] = keep + moved

    # -- running -------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session) -> None:
        if session.config.option.collectonly:
            return
        needed = {name for item in session.items for name in self.needs(item)}
        if not needed:
            return
        self.environ = dict(os.environ)
        self._folder = tempfile.mkdtemp(prefix="sparktf-jobs-")
        # a run ended by SIGTERM (a CI time limit, `kill`) ends as an interrupted one does, with
        # the session's end: its jobs' processes are killed, not left running on their own
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _interrupt)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="sparktf-job")
        for name in self.jobs:  # in the order given: the longest first
            if name in needed:
                self.futures[name] = self._pool.submit(self._run, name)

    def _run(self, name: str) -> Any:
        if self._stopping:
            raise JobFailed(f"job {name} not run: the session is ending")
        folder = Path(self._folder) / name
        folder.mkdir()
        start = time.monotonic()
        try:
            return self.jobs[name].run(JobContext(self, name, folder))
        finally:
            self.seconds[name] = round(time.monotonic() - start, 1)

    def started(self, process) -> None:
        with self._lock:
            self._processes.append(process)
            stopping = self._stopping
        if stopping:
            kill_group(process)

    def result(self, name: str) -> Any:
        """The job's result, waiting for it; a job that failed fails the test with its output."""
        future = self.futures.get(name)
        if future is None:
            raise JobFailed(
                f"job {name} was not started: it is started for the tests that use its fixture "
                f"({self.jobs[name].fixture}) when collection ends"
            )
        return future.result()

    def stop(self) -> None:
        """Kill every process the jobs started that still runs, and remove the jobs' folders."""
        with self._lock:
            self._stopping = True
            processes = list(self._processes)
        for process in processes:
            if process.poll() is None:
                kill_group(process)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session) -> None:
        self.stop()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.seconds:
            figures = ", ".join(f"{name} {s:.0f} s" for name, s in self.seconds.items())
            terminalreporter.write_line(f"background jobs: {figures}")
