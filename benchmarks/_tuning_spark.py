"""The Spark side of benchmarks/bench_tuning.py: the grid through ``TFClassifier.fitMultiple``,
(b) on ``local[N]`` and (c) on ``local-cluster``, with its warm-up and the training frame."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from _tuning import classifier, load_average, param_maps


def training_frame(spark, x, y):
    import pandas as pd

    pdf = pd.DataFrame({"features": list(x), "label": y.astype(np.int64)})
    df = spark.createDataFrame(pdf).repartition(os.cpu_count() or 1).cache()
    df.count()
    return df


def wait_for_executors(spark, wanted: int, timeout: float = 120.0) -> int:
    """Wait until ``wanted`` executors have registered (local-cluster starts them lazily)."""
    sc = spark.sparkContext
    deadline = time.time() + timeout
    while True:
        count = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        if count >= wanted or time.time() > deadline:
            return count
        time.sleep(0.5)


def run_fit_multiple(spark, x, y, args, slots: int) -> dict[str, Any]:
    """Warm every task slot up, then time one fitMultiple call over the grid."""
    warm_start = time.perf_counter()
    small = training_frame(spark, x[: 512 * slots], y[: 512 * slots])
    warm_clf = classifier(args, epochs=1)
    warm_maps = [{warm_clf.learningRate: 1e-3 * (i + 1)} for i in range(slots)]
    warm_models = [m for _, m in warm_clf.fitMultiple(small, warm_maps)]
    warm = time.perf_counter() - warm_start
    small.unpersist()
    df = training_frame(spark, x, y)

    clf = classifier(args, args.epochs)
    maps = param_maps(clf, args)
    load_before = load_average()
    start = time.perf_counter()
    models = dict(clf.fitMultiple(df, maps))
    total = time.perf_counter() - start
    df.unpersist()
    fits = []
    for index in range(len(maps)):
        model = models[index]
        if model.trainingFailure:
            raise RuntimeError(f"trial {index} failed: {model.trainingFailure}")
        history = model.history
        fits.append(
            {
                "seconds": history["seconds"],
                "loss": history["epochs"]["loss"][-1],
                "accuracy": history["epochs"]["accuracy"][-1],
                "pid": history["worker"]["pid"],
                "jvmPid": history["worker"]["jvmPid"],
                "threads": history["worker"].get("threads"),
            }
        )
    return {
        "warmup": warm,
        "warmupWorkers": len({m.history["worker"]["pid"] for m in warm_models}),
        "seconds": total,
        "fits": fits,
        "load": (load_before, load_average()),
    }
