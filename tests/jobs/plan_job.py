"""Transforms in a driver that never imports TensorFlow, in a process of its own.

Used by tests/inference/test_planning.py (the suite's own process has TensorFlow loaded), in the
background. A Python worker builds the suite's seeded MLP and saves it as a Keras file (so this
driver needs no TensorFlow for it either); the driver scores 9 rows with that file, once with the
model shipped from the driver and once read by the workers from its path, then prints one JSON
line: the file, whether TensorFlow was imported in this process, the rows, the scores, and how
often each Python worker loaded each model.
"""

from __future__ import annotations

import json
import os
import sys


def _loads(_frames):
    import pandas as pd

    from sparktf.inference import _sources

    for _ in _frames:
        yield pd.DataFrame({"pid": [os.getpid()], "loads": [json.dumps(_sources.LOAD_COUNTS)]})


def _save_mlp(path: str):
    """In a task: the suite's ``mlp`` (tests/conftest.py), saved to ``path``."""

    def build(frames):
        import keras
        import pandas as pd

        for _ in frames:
            keras.utils.set_random_seed(3)
            inputs = keras.Input((4,), name="feat")
            outputs = keras.layers.Dense(4, activation="softmax", name="probs")(inputs)
            keras.Model(inputs, outputs).save(path)
            yield pd.DataFrame({"path": [path]})

    return build


def main(folder: str) -> None:
    import numpy as np

    from sparktf import TFGraphTransformer
    from sparktf.session import get_spark

    spark = get_spark(master="local[2]", app_name="sparktf-plan-test")
    model_path = os.path.join(folder, "mlp.keras")
    spark.range(1, numPartitions=1).mapInPandas(_save_mlp(model_path), "path string").collect()
    features = np.random.RandomState(7).rand(9, 4).astype(np.float32)
    frame = spark.createDataFrame(
        [(i, features[i].tolist()) for i in range(len(features))], "id long, f array<float>"
    ).repartition(3)
    scores = {}
    for broadcast in (True, False):
        stage = TFGraphTransformer(
            modelPath=model_path, inputCol="f", outputCol="scores", broadcastModel=broadcast
        )
        rows = stage.transform(frame).collect()
        scores[str(broadcast)] = [r["scores"] for r in sorted(rows, key=lambda r: r["id"])]
    probe = spark.range(8).repartition(8).mapInPandas(_loads, "pid long, loads string")
    loads = {str(r["pid"]): json.loads(r["loads"]) for r in probe.collect()}
    result = {
        "model": model_path,
        "features": features.tolist(),
        "tensorflowInDriver": "tensorflow" in sys.modules,
        "scores": scores,
        "loads": loads,
    }
    print("RESULT " + json.dumps(result), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
