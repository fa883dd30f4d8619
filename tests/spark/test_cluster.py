"""Training happens in executor processes: on local-cluster and on a real standalone cluster.

Each job runs in a driver process of its own (tests/jobs/cluster_job.py), in the background
while the in-process tests run (tests/background.py; the fixtures are in tests/conftest.py): a
cross-validated grid, then the best model deployed through TFGraphTransformer on the executors
(and, on local-cluster, a staged grid larger than the executors' memory). On
``local-cluster[2,1,1024]`` the grid and the faults are steps of tests/jobs/local_cluster_job.py,
which shares that cluster start with tests/training/test_workers.py. On the standalone cluster
the session preloads TensorFlow in the executors' Python daemons (sparktf.daemon). The standalone
cluster is the one .ci/run starts (``SPARKTF_TEST_MASTER``); without it, the job starts one on a
free port with .ci/standalone-cluster.sh and stops it afterwards.
"""

from __future__ import annotations

import json

import pytest
from conftest import step_result


def _check_distributed(result: dict) -> None:
    executors = {t["jvmPid"] for t in result["trials"]}
    assert len(result["trials"]) == 8  # 4 param maps x 2 folds
    assert result["driverJvmPid"] not in executors  # not trained in the driver JVM's workers
    assert all(t["pid"] != result["driverPid"] for t in result["trials"])
    assert len(executors) == 2, executors  # both executors trained models
    assert result["best"]["jvmPid"] != result["driverJvmPid"]  # the final refit too
    assert result["testAccuracy"] > 0.9, result
    # The same predictions through the transformer (two float paths: allow a rare near-tie).
    assert result["deployedAgreement"] >= 0.99, result


def _daemons(result: dict) -> list[dict]:
    return [json.loads(d) for d in result["daemons"]]


@pytest.mark.cluster
def test_grid_trains_in_executor_processes_on_local_cluster(local_cluster_run):
    result = step_result(local_cluster_run, "cluster")
    _check_distributed(result)
    # The default daemon: workers import TensorFlow themselves, the daemon holds none.
    assert all("pyspark.daemon" in d["daemon"] for d in _daemons(result)), result["daemons"]
    assert not any(d["tensorflowInDaemon"] for d in _daemons(result)), result["daemons"]


@pytest.mark.cluster
def test_cross_validator_on_standalone_cluster(standalone_run):
    assert standalone_run["master"].startswith("spark://127.0.0.1:")
    result = standalone_run["result"]
    _check_distributed(result)
    # preload_tensorflow: every worker was forked from sparktf.daemon, which holds TensorFlow.
    assert all("-m sparktf.daemon" in d["daemon"] for d in _daemons(result)), result["daemons"]
    assert all(d["tensorflowInDaemon"] for d in _daemons(result)), result["daemons"]


@pytest.mark.cluster
def test_staged_grid_on_executors_with_less_memory_than_the_data(staged_run):
    """Data above maxBroadcastBytes is staged and streamed: a task's memory does not grow with it.

    Executors have a 512 MiB heap; the larger grid reads 160,000 rows x 784 floats (500 MiB as
    float32). The driver never collects the rows and the staged files are gone afterwards.
    """
    result = staged_run
    peaks = {int(k): v for k, v in result["taskPeakRssMiB"].items()}
    # 375 MiB more data; a task that held it would grow by at least that much.
    assert peaks[160_000] - peaks[40_000] < 100, peaks
    assert result["driverPeakRssMiB"] < 480, result  # the 500 MiB of rows never reached it
    assert result["accuracy"] > 0.9, result  # the label is feature 0 > 0.5
    assert result["left"] == [], result


@pytest.mark.cluster
def test_a_killed_python_worker_loses_no_model_and_no_row(local_cluster_run):
    """Faults injected on local-cluster (tests/jobs/fault_job.py): a Python worker is killed while
    it trains a model of a 4-map grid, and another while it runs a transform's batches."""
    result = step_result(local_cluster_run, "fault")
    fit, transform = result["fit"], result["transform"]
    # The kill hit a running task, which Spark ran again elsewhere.
    assert len(fit["killed"]) == 1 and fit["failedTasks"] >= 1, fit
    assert fit["killed"][0] not in fit["trainedBy"]
    # Every model came back, the same models a run without the fault trained.
    assert fit["models"] == 4
    assert fit["faultedLosses"] == pytest.approx(fit["cleanLosses"], rel=1e-6)
    # Every row of the transform exactly once.
    # The killed worker ran the model of a task held mid-partition, which therefore failed.
    assert transform["killed"] == [transform["marked"]["worker"]], transform
    assert transform["failedTasks"] >= 1, transform
    assert transform["rows"] == transform["distinct"] == transform["expected"]
    assert transform["widths"] == [10]


@pytest.mark.cluster
def test_the_embedded_default_retries_a_killed_python_worker(local_fault_run):
    """get_spark's local master tries a task again when its Python worker dies (Spark's local
    mode tries a task once unless the master names its attempts); tests/jobs/fault_job.py kills a
    worker of local[2] while it trains one of two models."""
    result = local_fault_run
    assert result["master"] == "local[2,4]"
    assert len(result["killed"]) == 1 and result["failedTasks"] >= 1, result
    assert result["models"] == 2 and result["trainingFailures"] == [None, None], result
