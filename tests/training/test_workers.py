"""One model trained on several Spark tasks (``numWorkers``): data-parallel TFClassifier.

The end-to-end scenario runs once on ``local-cluster[2,1,1024]`` in a driver process of its own
(tests/jobs/workers_job.py's steps, run by tests/jobs/local_cluster_job.py on the cluster start
tests/spark/test_cluster.py shares): two executor JVMs with one core each, so a two-worker fit
spans both.
The Connect run is a step of tests/jobs/connect_job.py. The Param checks and the shard arithmetic
run here, without a cluster.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import step_result as _ok


@pytest.fixture(scope="module")
def workers_run(local_cluster_run) -> dict:
    return _ok(local_cluster_run, "workers")


# -- on a multi-process cluster ----------------------------------------------------------------


@pytest.mark.cluster
def test_two_workers_end_with_identical_weights_on_two_executors(workers_run):
    run = _ok(workers_run, "two_workers")
    assert len(run["digests"]) == 2 and run["digests"][0] == run["digests"][1], run
    assert run["jvmPids"][0] != run["jvmPids"][1], run  # one worker per executor


@pytest.mark.cluster
def test_two_workers_match_one_worker_in_accuracy(workers_run):
    two, one = _ok(workers_run, "two_workers"), _ok(workers_run, "one_worker")
    assert two["accuracy"] > 0.9, two
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.03, (two["accuracy"], one["accuracy"])


@pytest.mark.cluster
def test_each_worker_reads_only_its_shard(workers_run):
    run = _ok(workers_run, "two_workers")
    train_rows = round(workers_run["trainRows"] * 0.9)  # validationSplit=0.1 held out
    shards = run["shardRows"]
    assert abs(sum(shards) - train_rows) <= 1 and abs(shards[0] - shards[1]) <= 1, run
    # every epoch, each worker trains on full batches of 32 rows (64 / 2) of its own shard
    per_epoch = (min(shards) // 32) * 32
    assert run["rowsRead"] == [per_epoch * run["epochs"]] * 2, run
    assert per_epoch * 2 < train_rows + 64, run


@pytest.mark.cluster
def test_the_result_saves_loads_and_transforms(workers_run):
    run = _ok(workers_run, "two_workers")
    assert run["loadedSame"] is True and run["loadedWorkers"] == 2, run


@pytest.mark.cluster
def test_images_with_batch_normalization_and_augmentation(workers_run):
    run = _ok(workers_run, "fit_multiple")["images"]
    assert run["digests"][0] == run["digests"][1], run  # moving statistics averaged too
    assert run["accuracy"] > 0.85, run


@pytest.mark.cluster
def test_a_base_fine_tunes_on_png_bytes_on_two_executors(workers_run):
    run = _ok(workers_run, "fine_tune_images")
    assert run["baseAccuracy"] > 0.9, run  # the base learnt its four patterns
    assert run["digests"][0] == run["digests"][1], run  # one model on both workers
    assert run["jvmPids"][0] != run["jvmPids"][1], run
    assert sum(run["shardRows"]) == 96 and abs(run["shardRows"][0] - run["shardRows"][1]) <= 1
    assert run["epochs"] == 5, run  # four of the head, then one fine-tuning the base
    assert run["accuracy"] >= 0.8, run  # three new classes: chance is 1/3
    assert run["conv1Unchanged"] is True, run  # frozen: the file's weights
    assert run["conv2Unchanged"] is False, run  # trainableLayers=1: fine-tuned
    # the standardization's moments are those of every training image, pooled over the shards
    np.testing.assert_allclose(run["standardizeMean"], run["pixelMean"], rtol=1e-5)


@pytest.mark.cluster
def test_staged_data_is_read_file_by_file(workers_run):
    run = _ok(workers_run, "staged")
    assert run["digests"][0] == run["digests"][1], run
    assert run["accuracy"] > 0.9, run
    assert all(rows > 0 for rows in run["shardRows"]), run
    assert sum(run["shardRows"]) < workers_run["trainRows"], run  # held-out rows excluded


@pytest.mark.cluster
def test_later_fits_fork_their_training_processes_from_a_warm_process(workers_run):
    """sparktf.training._warm: a Python worker's first multi-worker task starts a warm process
    (TensorFlow imported once); every training process of the fits on that worker is forked
    from it, so later fits import TensorFlow no more."""
    timings = [
        *_ok(workers_run, "two_workers")["timing"],
        *_ok(workers_run, "staged")["timing"],
        *_ok(workers_run, "fit_multiple")["images"]["timing"],
        *_ok(workers_run, "fine_tune_images")["timing"],
    ]
    assert all(t["warm"] for t in timings), timings
    # 8 training processes of 4 fits, forked from fewer warm processes: reused across fits
    parents = {t["forkedFrom"] for t in timings}
    assert len(timings) == 8 and len(parents) < len(timings), timings


@pytest.mark.cluster
def test_too_few_slots_is_a_clear_error_within_seconds(workers_run):
    run = workers_run["too_many"]
    assert run["type"] == "NotEnoughSlotsError", run
    assert "numWorkers=3" in run["error"] and "only 2 task slots" in run["error"], run
    assert run["seconds"] < 20, run


@pytest.mark.cluster
def test_a_nan_trial_fails_clearly_and_alone(workers_run):
    run = _ok(workers_run, "fit_multiple")
    assert run["failures"][0] is None, run
    assert "loss became nan" in run["failures"][1] or "loss became inf" in run["failures"][1], run


@pytest.mark.cluster
def test_a_killed_worker_process_does_not_hang_the_fit(workers_run):
    run = workers_run["killed"]
    assert run["killed"], run  # the fault was injected
    # the barrier stage ran once more and trained; no training process is left behind
    assert run.get("accuracy", 0) > 0.9, run
    assert run["left"] == [], run
    assert run["seconds"] < 300, run
    # nothing of the job (the whole training data) is left in the workers' temporary folder,
    # also by the peer whose task Spark killed with the failed stage
    left = [f for f in run["files"] if f.startswith("sparktf-worker") or f.endswith(".pkl")]
    assert left == [], run


@pytest.mark.cluster
def test_patience_longer_than_the_fit_keeps_the_best_epoch_as_one_task_does(workers_run):
    run = _ok(workers_run, "best_weights")
    for workers in ("workers2", "workers1"):
        fit = run[workers]
        losses = fit["valLoss"]
        assert losses[-1] - min(losses) > 0.005, fit  # the fit ends worse than its best epoch
        # the model's held-out log loss (Spark's evaluator on its probabilities) is the best
        # epoch's, on two workers as in one task
        assert abs(fit["modelValLoss"] - min(losses)) < 1e-3, (workers, fit)


# -- the Params and the shard arithmetic, without a cluster -----------------------------------


def test_num_workers_defaults_to_one_task_and_is_checked():
    from sparktf import TFClassifier

    assert TFClassifier().getNumWorkers() == 1
    assert TFClassifier(numWorkers=4, batchSize=64)._training_spec().num_workers == 4
    with pytest.raises(ValueError, match="numWorkers"):
        TFClassifier(numWorkers=0)._training_spec()
    with pytest.raises(ValueError, match="multiple of numWorkers=3"):
        TFClassifier(numWorkers=3, batchSize=64)._training_spec()


def test_shards_cover_every_row_once_and_steps_pair_up():
    from sparktf.training._shards import shard_rows, steps_per_epoch

    parts = [shard_rows(1001, rank, 3) for rank in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1001))
    assert [len(p) for p in parts] == [334, 334, 333]
    assert steps_per_epoch(333, 32) == 10
    with pytest.raises(ValueError, match="fewer than one batch"):
        steps_per_epoch(20, 32)


def test_too_few_slots_on_a_local_master_is_refused_before_reading_data(spark, digits):
    from sparktf import TFClassifier
    from sparktf.errors import NotEnoughSlotsError

    train, _ = digits
    start = time.time()
    with pytest.raises(NotEnoughSlotsError, match=r"numWorkers=3 .* only 2 task slots"):
        TFClassifier(numWorkers=3, batchSize=63, epochs=1).fit(train)
    assert time.time() - start < 20


def test_the_halving_search_refuses_workers(spark, digits):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier
    from sparktf.search import HalvingTrainValidationSplit

    train, _ = digits
    clf = TFClassifier(numWorkers=2, epochs=2)
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=[{clf.learningRate: 0.01}],
        evaluator=MulticlassClassificationEvaluator(),
    )
    with pytest.raises(ValueError, match="numWorkers > 1"):
        search.fit(train)
