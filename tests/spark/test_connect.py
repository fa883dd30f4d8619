"""sparktf over Spark Connect: training, tuning, failure isolation, persistence and inference.

The scenario runs once in its own process (tests/jobs/connect_job.py, in the background: the
``connect_run`` fixture of tests/conftest.py): opening a Connect session
turns pyspark's Connect mode on for the whole process, which the rest of the suite, on a classic
session, must not see. The job starts a local Connect server in that process
(``get_spark(remote="local[2]")``), so sparktf reaches Spark only through the Connect client.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.connect


def _ok(result: dict, step: str) -> dict:
    value = result[step]
    assert "error" not in value, value.get("trace", value)
    return value


def test_the_session_is_a_connect_client(connect_run):
    assert connect_run["sessionModule"].startswith("pyspark.sql.connect")


def test_a_local_connect_server_starts_without_a_warning_per_setting(connect_run):
    # pyspark sets the builder's settings again on the new session, warning for each one a
    # session cannot change; the server was started with them
    noise = [w for w in connect_run["startWarnings"] if "CANNOT_MODIFY" in w or "NOT supp" in w]
    assert noise == []
    assert connect_run["serverPython"] == connect_run["python"]


def test_the_local_server_listens_on_a_port_of_its_own_and_the_client_uses_it(connect_run):
    # not pyspark's fixed 15002, where two processes of a machine starting one would meet
    port = int(connect_run["serverPort"])
    assert port != 15002
    assert connect_run["clientEndpoint"] == f"localhost:{port}"


def test_fit_trains_in_a_task_and_predicts(connect_run):
    fit = _ok(connect_run, "fit")
    assert fit["accuracy"] > 0.9, fit


def test_fit_multiple_isolates_a_failed_trial(connect_run):
    result = _ok(connect_run, "fitMultiple")
    good, bad = result["failures"]
    assert good is None
    assert bad and "Sequential" in bad, bad
    assert all(pid is not None for pid in result["pids"])


def test_fail_on_trial_error_stops_the_job(connect_run):
    result = _ok(connect_run, "strict")
    assert result["raised"] == "TrialFailedError"
    assert "failOnTrialError=True" in result["message"]


def test_cross_validator_over_a_pipeline_and_the_report(connect_run):
    result = _ok(connect_run, "crossValidator")
    low, high = result["avgMetrics"]
    assert high > low  # learning rate 3e-3 beats 1e-5 in 15 epochs
    assert result["testAccuracy"] > 0.9
    assert result["reportRows"] == 2
    assert result["reportBest"] == pytest.approx(3e-3)


def test_save_overwrite_and_load(connect_run):
    saved = _ok(connect_run, "persistence")
    assert saved["accuracy"] == pytest.approx(_ok(connect_run, "fit")["accuracy"])
    assert saved["estimatorEpochs"] == 15


def test_graph_transformer_scores_every_row(connect_run):
    result = _ok(connect_run, "transformer")
    assert result["rows"] > 300
    assert result["width"] == 10
    assert result["workersPlanGap"] < 1e-5  # planned in the workers: the same scores


def test_staged_training_data_and_cleanup(connect_run):
    result = _ok(connect_run, "staged")
    assert result["accuracy"] > 0.9
    assert result["leftover"] == []


def test_halving_search_resumes_saves_and_reports(connect_run):
    result = _ok(connect_run, "halving")
    assert sorted(result["rungs"]) == [1, 1, 2]  # 3 maps x 1 epoch, then 1 x 4
    assert result["rungs"][result["best"]] == 2
    assert result["trained"] == [8, 0]  # 3 maps x 2 folds, then 1 x 2; all read back again
    assert result["testAccuracy"] > 0.8
    assert result["loadedTrials"] and result["reportRungs"] == result["rungs"]


def test_one_model_on_two_workers_over_connect(connect_run):
    workers = _ok(connect_run, "workers")
    assert workers["accuracy"] > 0.9, workers
    assert len(set(workers["digests"])) == 1 and len(workers["digests"]) == 2, workers
    # SPARKTF_WARM_WORKERS=0 (the job's): fresh training processes, as with no warm process
    assert workers["warm"] == [False, False], workers
    assert (
        sum(workers["shardRows"]) > 0
        and abs(workers["shardRows"][0] - workers["shardRows"][1]) <= 1
    )
    assert "numWorkers=3" in workers["refused"] and "task slots" in workers["refused"], workers
    # Refused by Spark's barrier check as get_spark sets it (3 tries, 1 s apart), not after its
    # default 40 tries 15 s apart (10 minutes): sooner than the fit that trained (its data is
    # read the same way) took, plus seconds. Measured against that fit, so a loaded machine
    # slows both alike.
    assert workers["refusedSeconds"] < workers["fitSeconds"] + 30, workers
