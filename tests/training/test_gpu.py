"""Which GPUs TensorFlow sees in a task: Spark's assignment, else one per partition.

No GPU is needed: the device list and the task are stand-ins.
"""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize(
    ("physical", "assigned", "partition", "expected"),
    [
        (0, [], 3, []),  # no GPU: the CPU
        (0, ["0"], 3, []),
        (4, ["2"], 0, [2]),  # Spark's assignment wins
        (4, ["3", "1"], 0, [1, 3]),
        (4, [], 0, [0]),  # none assigned: one GPU per task, spread by partition
        (4, [], 6, [2]),
        (4, [], None, None),  # the driver: TensorFlow's default (all visible)
        (2, ["7"], 1, None),  # an address that names no visible GPU: all visible
    ],
)
def test_choose_gpus(physical, assigned, partition, expected):
    from sparktf._tf import choose_gpus

    chosen, reason = choose_gpus(physical, assigned, partition)
    assert chosen == expected
    assert reason


class _Task:
    def __init__(self, partition, gpus):
        self._partition, self._gpus = partition, gpus

    def partitionId(self):
        return self._partition

    def cpus(self):
        return 1

    def resources(self):
        from types import SimpleNamespace

        return {"gpu": SimpleNamespace(addresses=self._gpus)} if self._gpus else {}


@pytest.mark.parametrize(
    ("partition", "gpus", "visible"),
    [(3, [], ["GPU:1"]), (2, ["1"], ["GPU:1"]), (None, [], None)],
)
def test_task_sees_its_assigned_or_spread_gpu(monkeypatch, caplog, partition, gpus, visible):
    from pyspark import TaskContext

    from sparktf import _tf

    tf = _tf.configure_tensorflow()
    devices = ["GPU:0", "GPU:1"]
    calls = {"visible": None, "growth": []}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: list(devices))
    monkeypatch.setattr(
        tf.config, "set_visible_devices", lambda d, kind=None: calls.update(visible=list(d))
    )
    monkeypatch.setattr(
        tf.config.experimental, "set_memory_growth", lambda d, on: calls["growth"].append(d)
    )
    task = None if partition is None else _Task(partition, gpus)
    monkeypatch.setattr(TaskContext, "get", classmethod(lambda cls: task))
    monkeypatch.setattr(_tf, "_configured", {})  # a fresh Python worker
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.setenv(name, "1")
    with caplog.at_level(logging.INFO, logger="sparktf"):
        assert _tf.configure_tensorflow() is tf
    assert calls["visible"] == visible
    assert calls["growth"] == (visible or devices)
    message = " ".join(r.getMessage() for r in caplog.records if r.name == "sparktf")
    assert ("GPU 1 of 2" if visible and not gpus else "GPU") in message
