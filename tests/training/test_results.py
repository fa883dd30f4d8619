"""What a training hands back to the driver holds the keys its declaration names, no others."""

from __future__ import annotations

import numpy as np

from sparktf._classifier_params import training_spec
from sparktf.training._multiworker import _merge
from sparktf.training._plans import TrainingData, TrainingResult, WorkerResult
from sparktf.training._training import train_one

REQUIRED = TrainingResult.__required_keys__
DECLARED = REQUIRED | TrainingResult.__optional_keys__


def _data(labels: np.ndarray) -> TrainingData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(labels), 4)).astype(np.float32)
    x[:, 0] += labels  # the first feature tells the class
    return TrainingData(num_features=4, num_classes=2, x=x, y=labels)


def test_a_trained_and_a_failed_training_give_the_declared_keys():
    spec = training_spec(hiddenLayers=[4], epochs=2, batchSize=16)
    labels = np.arange(64) % 2

    trained = train_one(3, spec, _data(labels))
    assert REQUIRED <= set(trained) <= DECLARED, set(trained) ^ DECLARED
    assert trained["index"] == 3 and trained["error"] is None
    assert isinstance(trained["model"], bytes) and len(trained["history"]["loss"]) == 2
    assert trained["seconds"] > 0 and trained["worker"]["pid"] > 0

    failed = train_one(0, spec, _data(labels * 7))  # labels past the two classes
    assert REQUIRED <= set(failed) <= DECLARED, set(failed) ^ DECLARED
    assert failed["model"] is None and failed["error"] and "traceback" in failed


def test_the_workers_results_merge_into_one_of_the_declared_keys():
    def worker(rank: int, started: float, finished: float) -> WorkerResult:
        return {
            "rank": rank,
            "error": None,
            "history": {"loss": [0.5]},
            "model": b"keras" if rank == 0 else None,
            "timing": {"train": 1.0},
            "rowsRead": 10,
            "shardRows": 10 + rank,
            "weightsDigest": "same",
            "peakRssMiB": 100.0,
            "seconds": finished - started,
            "worker": {"host": "h", "rank": rank, "started": started, "finished": finished},
            **({"outputsLogits": True} if rank == 0 else {}),
        }

    merged = _merge(5, [worker(0, 10.0, 14.0), worker(1, 9.0, 13.0)], "group")
    assert REQUIRED <= set(merged) <= DECLARED, set(merged) ^ DECLARED
    assert merged["index"] == 5 and merged["model"] == b"keras" and merged["outputsLogits"]
    assert merged["seconds"] == 5.0  # from the first start to the last end
    assert merged["worker"]["jobGroup"] == "group"
    assert [w["shardRows"] for w in merged["worker"]["workers"]] == [10, 11]
