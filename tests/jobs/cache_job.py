"""A TFClassificationModel transformed twice on ``local[1]``, in a process of its own.

Used by tests/training/test_classification_persistence.py. With one task slot, every Python
task of this application runs in the one reused Python worker, so the probes after each
transform see the very process that ran it: whether it holds the model's key and how often it
loaded a model. Prints one JSON line with both probes.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    from pyspark.ml.linalg import Vectors

    from sparktf import TFClassifier
    from sparktf.session import get_spark

    spark = get_spark(master="local[1]", app_name="sparktf-cache-test")
    df = spark.createDataFrame(
        [(Vectors.dense([float(i % 2), (i % 3) / 3]), float(i % 2)) for i in range(32)],
        ["features", "label"],
    )
    model = TFClassifier(hiddenLayers=[4], epochs=1, batchSize=8).fit(df)
    key = model._model_spec().key

    def probe(frames):
        import pandas as pd

        from sparktf._loading import MODEL_CACHE

        for _ in frames:
            yield pd.DataFrame(
                {"pid": [os.getpid()], "cached": [key in MODEL_CACHE], "loads": [MODEL_CACHE.loads]}
            )

    def state():
        rows = (
            spark.range(4).repartition(4).mapInPandas(probe, "pid long, cached boolean, loads long")
        )
        return sorted({(r.pid, r.cached, r.loads) for r in rows.collect()})

    probes = []
    for _ in range(2):
        model.transform(df.repartition(3)).select("prediction").collect()
        probes.append(state())
    print("RESULT " + json.dumps({"probes": probes}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
    sys.exit(0)
