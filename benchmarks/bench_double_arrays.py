"""Arrays of doubles into a float32 model: TFGraphTransformer against the same values as floats.

One run, one session, the same Keras MLP (784-128-10) on N rows of 784 random values held in
two cached DataFrames, ``array<double>`` and ``array<float>``; every side writes all rows to the
``noop`` sink, warm, alternating, medians of ``--repeats``:

* TFGraphTransformer on the doubles (cast to ``array<float>`` on the JVM for its float32 input);
* the baseline: TFGraphTransformer on the same values stored as floats, the least a double
  column can cost;
* ``predict_batch_udf`` with the same model on the doubles (Spark's recipe), for scale.

    python benchmarks/bench_double_arrays.py [--rows 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
from _machine import describe
from _timing import timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from sparktf import TFGraphTransformer
    from sparktf.session import get_spark

    cores = os.cpu_count() or 1
    spark = get_spark(master=f"local[{cores}]", app_name="bench-double-arrays")
    x = np.random.default_rng(0).random((args.rows, 784))
    folder = tempfile.mkdtemp(prefix="bench-doubles-")
    path = os.path.join(folder, "mlp.keras")
    inputs = keras.Input((784,), name="x")
    hidden = keras.layers.Dense(128, activation="relu")(inputs)
    keras.Model(inputs, keras.layers.Dense(10, name="y")(hidden)).save(path)

    doubles = spark.createDataFrame([(row.tolist(),) for row in x], "x array<double>")
    doubles = doubles.repartition(cores).cache()
    floats = doubles.withColumn("x", F.col("x").cast("array<float>")).cache()
    for frame in (doubles, floats):
        frame.count()
    stage = TFGraphTransformer(modelPath=path, inputCol="x", outputCol="scores")

    def make_predict_fn():
        model = keras.models.load_model(path)
        return lambda batch: model.predict_on_batch(batch)

    classify = predict_batch_udf(
        make_predict_fn,
        return_type=T.ArrayType(T.FloatType()),
        batch_size=512,
        input_tensor_shapes=[[784]],
    )
    frames = {
        "doubles": stage.transform(doubles),
        "floats": stage.transform(floats),
        "udf": doubles.withColumn("scores", classify(F.col("x"))),
    }

    def run(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    for frame in frames.values():
        run(frame)  # warm-up: workers started, model loaded
    runs: dict[str, list[float]] = {name: [] for name in frames}
    for _ in range(args.repeats):
        for name, frame in frames.items():
            runs[name].append(timed(lambda frame=frame: run(frame)))
    warm = {name: statistics.median(values) for name, values in runs.items()}
    names = {
        "doubles": "TFGraphTransformer, array<double>",
        "floats": "TFGraphTransformer, array<float> (baseline)",
        "udf": "predict_batch_udf, array<double>",
    }
    print(f"machine: {describe()}")
    print(f"{args.rows} rows of 784 values, Keras MLP 784-128-10, local[{cores}]")
    for name, label in names.items():
        values = ", ".join(f"{v:.2f}" for v in runs[name])
        print(f"{label:<46} {warm[name]:6.3f} s (median)  runs {values}")
    print(
        f"doubles / floats (baseline): {warm['doubles'] / warm['floats']:.2f}x the time; "
        f"TFGraphTransformer / predict_batch_udf on doubles: {warm['udf'] / warm['doubles']:.2f}x"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
