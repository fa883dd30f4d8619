"""One SparkSession for the whole suite (local[2]: training and inference run in tasks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


# Test modules that start Spark themselves (a command, an example, a job in its own process)
# rather than through the ``spark`` fixture.
_STARTS_SPARK = {"test_cli", "test_examples", "test_seed_table", "test_cluster", "test_connect"}


def pytest_collection_modifyitems(config, items):
    """Sort every test into a tier: ``unit`` (no Spark), ``spark``, ``cluster``, ``connect``.

    A test is ``spark`` when it uses the ``spark`` fixture (directly or through another
    fixture) or lives in a module that starts Spark itself; ``make test-fast`` runs the rest.
    The check of the repository root (tests/house/test_root_guard.py) runs last.
    """
    # what the tests left in the repository root is checked once they have all run
    last = [item for item in items if item.name == _ROOT_CHECK]
    items[:] = [item for item in items if item.name != _ROOT_CHECK] + last
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "").rsplit(".", 1)[-1]
        marks = {mark.name for mark in item.iter_markers()}
        uses_spark = "spark" in getattr(item, "fixturenames", ()) or module in _STARTS_SPARK
        if uses_spark or marks & {"cluster", "connect", "standalone"}:
            item.add_marker(pytest.mark.spark)
        else:
            item.add_marker(pytest.mark.unit)


def run_job(script: str, *args: str, timeout: int = 600) -> dict:
    """Run a job script of tests/jobs/ in a driver process of its own; return its ``RESULT`` JSON.

    Used by tests needing a SparkContext other than the suite's (another master) or a Spark
    Connect client, which turns pyspark's Connect mode on for its whole process.
    """
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run(
        [sys.executable, str(JOBS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="session")
def local_cluster_run() -> dict:
    """The jobs the suite runs on ``local-cluster[2,1,1024]``, on one cluster start
    (tests/jobs/local_cluster_job.py): ``{"workers": ..., "cluster": ..., "fault": ...}``, each
    a step's result or its ``error`` and ``trace``."""
    return run_job("local_cluster_job.py", "local-cluster[2,1,1024]", timeout=1800)


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
