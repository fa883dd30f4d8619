"""Many transforms with different models in one session: the workers' model cache evicts, so
their memory stays bounded, and unpacked SavedModels leave no folders beyond the cached ones.

``benchmarks/bench_soak.py`` is the long version (20 models, 20,000 rows, figures in
docs/benchmarks.md).
"""

from __future__ import annotations

import collections
import glob
import os
import tempfile

import numpy as np
import pytest
from rows import rows_by  # tests/rows.py

from sparktf import TFGraphTransformer


def _worker_rss(spark):
    """{pid: resident MiB} of the Python workers that run SQL UDFs."""

    def probe(frames):
        import pandas as pd

        for _ in frames:
            with open("/proc/self/status") as handle:
                kib = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS"))
            yield pd.DataFrame({"pid": [os.getpid()], "rss": [kib / 1024]})

    frame = spark.range(0, 8, 1, 8).mapInPandas(probe, "pid long, rss double")  # 8 tasks
    return {r["pid"]: r["rss"] for r in frame.collect()}


def _module(tf, value: float):
    """A SavedModel-able module: x [?, 8] -> {"y": x @ W}, W filled with ``value``."""
    module = tf.Module()
    module.w = tf.Variable(np.full((8, 3), value, np.float32))
    module.serve = tf.function(
        lambda x: {"y": tf.matmul(x, module.w)},
        input_signature=[tf.TensorSpec([None, 8], tf.float32)],
    )
    return module


def _folders(jvm: int):
    """This run's unpacked SavedModel folders (``sparktf-savedmodel-<pid>-...``) in the temporary
    folder, which other processes on the machine share (the suite's background jobs, other runs):
    the folders of this process, of processes below its JVM ``jvm`` (the Python workers), and of
    processes that are gone (counted, as nothing tells whose they were)."""
    found = glob.glob(os.path.join(tempfile.gettempdir(), "sparktf-savedmodel-*"))
    return {name for name in found if _ours(_pid(name), jvm)}


def _pid(name: str) -> int:
    return int(os.path.basename(name).split("-")[2])


def _ours(pid: int, jvm: int) -> bool:
    """Whether ``pid`` is this process, below the JVM ``jvm``, or gone (walked up through /proc)."""
    if pid == os.getpid():
        return True
    while pid > 1:
        if pid == jvm:
            return True
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return True  # gone
    return False


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_six_models_in_a_row_keep_workers_bounded_and_leave_no_folders(spark, tmp_path):
    from sparktf._loading import MODEL_CACHE
    from sparktf._tf import configure_tensorflow

    tf = configure_tensorflow()
    rows = np.random.RandomState(0).rand(400, 8).astype(np.float32)
    df = spark.createDataFrame(
        [(i, r.tolist()) for i, r in enumerate(rows)], "id long, f array<float>"
    )
    df = df.repartition(4).cache()
    jvm = spark.sparkContext._jvm.ProcessHandle.current().pid()
    before = _folders(jvm)
    rss = []
    for i in range(6):
        module = _module(tf, i + 1.0)
        path = str(tmp_path / f"model-{i}")
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
        stage = TFGraphTransformer.fromSavedModel(path, inputCol="f", outputCol="y")
        out = rows_by(stage.transform(df), "id")
        got = np.array([r["y"] for r in out])
        np.testing.assert_allclose(got, rows @ np.full((8, 3), i + 1.0), rtol=1e-5)
        rss.append(_worker_rss(spark))
    workers = set().union(*rss)
    new = _folders(jvm) - before
    # Each process holding models (the driver and every Python worker) keeps at most its cache.
    assert len(new) <= MODEL_CACHE.capacity * (1 + len(workers)), sorted(new)
    by_pid = collections.Counter(_pid(name) for name in new)
    assert max(by_pid.values(), default=0) <= MODEL_CACHE.capacity, by_pid
    second, last = max(rss[1].values()), max(rss[-1].values())
    assert last <= second * 1.5 + 200, rss
