"""One SparkSession for the whole suite (local[2]: training and inference run in tasks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from background import BackgroundJobs, Job, JobFailed, kill_group, result_line, tail

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The repository root. No test reads or writes there: commands, examples and jobs run in
#: folders of their own, and :class:`RootGuard` fails a run that left anything there.
ROOT = Path(__file__).resolve().parents[1]
#: The scripts tests run as drivers of their own (:func:`run_job`).
JOBS = Path(__file__).resolve().parent / "jobs"
#: The test that checks the root once the others have run (tests/house/test_root_guard.py).
_ROOT_CHECK = "test_the_run_left_the_repository_root_as_it_found_it"


class RootGuard:
    """Fails the test run if it added an entry to the folder ``root`` or removed one: a test
    must neither depend on the folder the suite runs in nor leave files there that a user, or
    the next run, would find (e.g. a default ``--output`` of the command)."""

    #: What a run may add: the environment, the tools' caches, build output.
    MAY_HOLD = frozenset({".venv", ".git", ".pytest_cache", ".ruff_cache", "__pycache__", "build"})

    def __init__(self, root: Path) -> None:
        self.root = root
        self.before: set[str] | None = None

    def entries(self) -> set[str]:
        return {
            name
            for name in os.listdir(self.root)
            if name not in self.MAY_HOLD and not name.endswith(".egg-info")
        }

    def changes(self) -> list[str]:
        """One line per entry added or removed since the run started (empty: none)."""
        if self.before is None:
            return []
        after = self.entries()
        return [f"added {name}" for name in sorted(after - self.before)] + [
            f"removed {name}" for name in sorted(self.before - after)
        ]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session) -> None:
        self.before = self.entries()

    @pytest.hookimpl(trylast=True)  # after the session fixtures' teardown
    def pytest_sessionfinish(self, session) -> None:
        changes = self.changes()
        if not changes:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", f"FAILED: the test run changed {self.root}", red=True)
            for line in changes:
                reporter.write_line(f"  {line}")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    config.pluginmanager.register(RootGuard(ROOT), "sparktf-root-guard")
    config.pluginmanager.register(BACKGROUND, "sparktf-background-jobs")


# Test modules that start Spark themselves (a command, an example, a job in its own process)
# rather than through the ``spark`` fixture.
_STARTS_SPARK = {
    *("test_cli", "test_cli_startup", "test_cli_tune", "test_cli_label", "test_cli_demo"),
    *("test_examples", "test_seed_table", "test_cluster", "test_connect"),
}


def pytest_collection_modifyitems(config, items):
    """Sort every test into a tier: ``unit`` (no Spark), ``spark``, ``cluster``, ``connect``.

    A test is ``spark`` when it uses the ``spark`` fixture (directly or through another
    fixture) or lives in a module that starts Spark itself; ``make test-fast`` runs the rest.
    A test that waits on a background job (tests/background.py) is ``spark`` too, and runs after
    the others, so the in-process tests run while the jobs do. The check of the repository root
    (tests/house/test_root_guard.py) runs last.
    """
    BACKGROUND.order(items)
    # what the tests left in the repository root is checked once they have all run
    last = [item for item in items if item.name == _ROOT_CHECK]
    items[:] = [item for item in items if item.name != _ROOT_CHECK] + last
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "").rsplit(".", 1)[-1]
        marks = {mark.name for mark in item.iter_markers()}
        uses_spark = (
            "spark" in getattr(item, "fixturenames", ())
            or module in _STARTS_SPARK
            or bool(BACKGROUND.needs(item))
        )
        if uses_spark or marks & {"cluster", "connect", "standalone"}:
            item.add_marker(pytest.mark.spark)
        else:
            item.add_marker(pytest.mark.unit)


#: The Java options of the job drivers' JVMs (spark-submit reads ``SPARK_SUBMIT_OPTS``: the
#: drivers, the Spark Connect servers they start) and of their executors (through the system
#: property ``spark.executor.extraJavaOptions``). These JVMs live seconds to minutes on small
#: data, on a machine the suite keeps CPU-bound: the quick JIT tier alone and the serial collector
#: cut the CPU of the staged job, run alone, by a fifth to a quarter. The suite's own session,
#: which lives the whole run, keeps Java's defaults (with every JVM of the suite on these options
#: the whole run cost more CPU: 2,021 against 1,872 CPU-s; with the quick tier on the session's
#: JVM alone, a fresh-clone run's session JVM used 285 CPU-s against 282 and 313 on the defaults,
#: its code-cache sweeper alone 32 CPU-s, though short runs of a few test files did gain), as do
#: the demo job (run as a user runs it) and a user's own ``SPARK_SUBMIT_OPTS``.
JOB_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _job_env(context) -> dict:
    submit = context.env().get("SPARK_SUBMIT_OPTS") or (
        f"{JOB_JAVA_OPTIONS} '-Dspark.executor.extraJavaOptions={JOB_JAVA_OPTIONS}'"
    )
    return context.env(PYSPARK_PYTHON=sys.executable, SPARK_REMOTE=None, SPARK_SUBMIT_OPTS=submit)


#: How long a background job's driver may run. Jobs that yield the CPU (``YIELDING``) run on what
#: the in-process tests leave, so their time stretches with the machine's load: the staged job
#: ran past 600 s on a loaded machine once (158 s in a run where it did not yield).
JOB_TIMEOUT = 1800


def run_job(script: str, *args: str, timeout: int = JOB_TIMEOUT, context=None) -> dict:
    """Run a job script of tests/jobs/ in a driver process of its own; return its ``RESULT`` JSON.

    Used by tests needing a SparkContext other than the suite's (another master) or a Spark
    Connect client, which turns pyspark's Connect mode on for its whole process. In a background
    job (``context``), the process is one the session kills if it is still running at its end.
    """
    argv = [sys.executable, str(JOBS / script), *args]
    if context is not None:
        return result_line(context.run(argv, timeout, _job_env(context)))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return result_line(done)


# -- the driver jobs, in the background (tests/background.py) -----------------------------------
#
# Each job is run once, for the tests that use its fixture, started when collection ends; the
# longest first. What each proves is in the tests that read it.


def _local_cluster_job(context) -> dict:
    """The jobs on ``local-cluster[2,1,1024]``, on one cluster start
    (tests/jobs/local_cluster_job.py): ``{"workers": ..., "cluster": ..., "fault": ...}``, each a
    step's result or its ``error`` and ``trace``."""
    return run_job("local_cluster_job.py", "local-cluster[2,1,1024]", context=context)


def _connect_job(context) -> dict:
    return run_job("connect_job.py", "local[2]", context=context)


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _standalone_job(context) -> dict:
    """The grid on a standalone cluster with TensorFlow preloaded in its daemons: the cluster
    .ci/run started (``SPARKTF_TEST_MASTER``), or one started here on a free port and stopped
    afterwards: ``{"master": ..., "result": ...}``."""
    master = context.env().get("SPARKTF_TEST_MASTER")
    if master:
        return {
            "master": master,
            "result": run_job("cluster_job.py", master, "--preload", context=context),
        }
    script = str(ROOT / ".ci" / "standalone-cluster.sh")
    state = str(context.folder / "standalone")
    # a free port: another run of the suite on this machine may have a cluster of its own
    env = context.env(
        SPARKTF_MASTER_PORT=context.env().get("SPARKTF_MASTER_PORT") or str(free_port())
    )
    try:
        started = context.run(["bash", script, "start", sys.executable, state], 180, env)
        if started.returncode != 0:
            raise JobFailed(f"the standalone cluster did not start\n{tail(started.stderr)}")
        master = started.stdout.strip()
        return {
            "master": master,
            "result": run_job("cluster_job.py", master, "--preload", context=context),
        }
    finally:
        context.run(["bash", script, "stop", state], 60)


def _staged_job(context) -> dict:
    staging = str(context.folder / "staging")
    return run_job("cluster_job.py", "local-cluster[2,1,512]", "--staged", staging, context=context)


def _local_fault_job(context) -> dict:
    return run_job("fault_job.py", "local[2]", timeout=600, context=context)


def _demo_job(context) -> dict:
    """``sparktf demo --quick --images 4`` in a process of its own, as a user runs it (no
    ``TF_CPP_MIN_LOG_LEVEL``): its output, and the folder it wrote."""
    output = context.folder / "demo"
    argv = [
        sys.executable,
        "-m",
        "sparktf",
        "demo",
        "--quick",
        "--images",
        "4",
        "--output",
        str(output),
    ]
    env = context.env(PYSPARK_PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL=None, SPARK_REMOTE=None)
    done = context.run(argv, 900, env)
    if done.returncode != 0:
        raise JobFailed(
            f"sparktf demo exited with {done.returncode}\n--- stdout\n{tail(done.stdout)}\n"
            f"--- stderr\n{tail(done.stderr)}"
        )
    return {"stdout": done.stdout, "stderr": done.stderr, "output": str(output)}


def _search_resume_job(context) -> dict:
    """tests/jobs/search_job.py with a checkpoint folder, its driver (and the JVM and workers
    with it) killed once 4 trials are written, then run again with the same folder:
    ``{"folder", "finished" (trials written before the kill), "result" (the rerun's)}``."""
    folder = context.folder / "ck"
    argv = [sys.executable, str(JOBS / "search_job.py"), str(folder)]

    def written() -> int:
        return len(list((folder / "trials").glob("*.json")))

    first = context.popen(
        argv, _job_env(context), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while written() < 4:
            if first.poll() is not None:
                raise JobFailed("the search ended before it was killed")
            if time.monotonic() > deadline:
                raise JobFailed(f"no 4 trials were written in {JOB_TIMEOUT} s")
            time.sleep(0.2)
    finally:
        kill_group(first)
        first.wait()
    finished = written()
    return {
        "folder": str(folder),
        "finished": finished,
        "result": run_job("search_job.py", str(folder), context=context),
    }


def _cache_job(context) -> dict:
    return run_job("cache_job.py", context=context)


def _plan_job(context) -> dict:
    return run_job("plan_job.py", str(context.folder), context=context)


#: Jobs that yield the CPU to the in-process tests (a nice level): those whose proof does not
#: rest on how fast their processes run (the fault jobs find a worker to kill by the CPU it burns;
#: the demo runs as a user runs it).
YIELDING = 5

#: The longest first: at most two run at once, and the tests waiting on one run in this order.
JOBS_IN_BACKGROUND = [
    Job("local_cluster", "local_cluster_run", _local_cluster_job),
    Job("connect", "connect_run", _connect_job, YIELDING),
    Job("standalone", "standalone_run", _standalone_job, YIELDING),
    Job("staged", "staged_run", _staged_job, YIELDING),
    Job("demo", "demo_run", _demo_job),
    Job("local_fault", "local_fault_run", _local_fault_job),
    Job("search_resume", "search_resume_run", _search_resume_job, YIELDING),
    Job("cache", "cache_run", _cache_job, YIELDING),
    Job("plan", "plan_run", _plan_job, YIELDING),
]
BACKGROUND = BackgroundJobs(JOBS_IN_BACKGROUND)


def _job_fixture(job: Job):
    def fixture() -> Any:
        return BACKGROUND.result(job.name)

    fixture.__name__ = job.fixture
    fixture.__doc__ = f"The result of the background job {job.name!r} (waits for it)."
    return pytest.fixture(scope="session", name=job.fixture)(fixture)


for _job in JOBS_IN_BACKGROUND:
    globals()[_job.fixture] = _job_fixture(_job)


def step_result(run: dict, step: str) -> dict:
    """The result of a step of a job's run, failing with its traceback if it raised."""
    value = run[step]
    assert "error" not in value or value["error"] is None, value.get("trace", value)
    return value


def pytest_sessionfinish(session, exitstatus):
    """Close the thread pools pyspark's validators leave open, while their pipes still are
    (at interpreter exit each would print an ``OSError`` traceback)."""
    from sparktf.session import close_idle_thread_pools

    close_idle_thread_pools()


@pytest.fixture(autouse=True)
def _library_logging():
    """Each test starts with sparktf's loggers as the library leaves them. The command's
    ``configure_logging`` (run in-process by the CLI tests) gives the ``sparktf`` logger a
    stderr handler and stops its propagation; left so, pytest would attach its capture handler
    to that logger as well as to the root, and later tests' ``caplog`` would differ by order."""
    import logging

    yield
    logger = logging.getLogger("sparktf")
    for handler in [h for h in logger.handlers if type(h).__name__ == "_StderrHandler"]:
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def spark():
    """The suite's session. Its Python daemon preloads TensorFlow (``sparktf.daemon``): a task
    that raises ends its Python worker, and local[2,4] tries it 4 times, so each test of an error
    would otherwise import TensorFlow four times over (a 20-40 s test instead of 2-6 s). The
    default daemon, whose workers import TensorFlow themselves, is what the local-cluster job
    (tests/spark/test_cluster.py asserts it), the local[2] fault job, the examples and the
    command's subprocesses run on."""
    from sparktf.session import get_spark

    session = get_spark(master="local[2]", app_name="sparktf-tests", preload_tensorflow=True)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def digits(spark):
    """scikit-learn digits split 80/20 with a fixed seed: (train, test) DataFrames, cached."""
    from sparktf.datasets import load_digits

    df = load_digits(spark)
    train, test = df.randomSplit([0.8, 0.2], seed=7)
    return train.cache(), test.cache()


# -- small TensorFlow models shared by the inference tests -----------------------------------


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, configured as sparktf configures it."""
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow()


@pytest.fixture(scope="session")
def mlp(tf):
    """A seeded Keras MLP: input 'feat' [?, 4] -> softmax 'probs' [?, 4]."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,), name="feat")
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(inputs)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def features():
    """Nine rows of four features for ``mlp``."""
    import numpy as np

    return np.random.RandomState(7).rand(9, 4).astype(np.float32)
