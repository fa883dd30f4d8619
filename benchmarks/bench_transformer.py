"""Throughput of TFGraphTransformer against a plain TensorFlow loop and predict_batch_udf.

One run, same data, same model, same cores:

* ``TFGraphTransformer``: cold (first transform in a fresh SparkSession: Python workers start,
  import TensorFlow, load the model) and warm (the same transform again);
* (a) one Python process, no Spark: a ``tf.function`` over batches of 512 rows, with TensorFlow
  using every core;
* (b) ``pyspark.ml.functions.predict_batch_udf`` with the same Keras model and batch size;
* (c) for scale, a pandas UDF that only moves the arrays to Python and back (no model): the
  least any pandas-UDF inference can cost on this machine.

The data are N images of 28x28 pixels (scikit-learn's 8x8 digits upscaled and repeated), held as
``array<float>`` rows in a cached DataFrame with one partition per core; the model is a small CNN
(two 3x3 convolutions with max pooling, a 64-unit dense layer, 10 softmax outputs). Spark jobs
run every row through the model and write to the ``noop`` sink, so nothing is skipped.

    python benchmarks/bench_transformer.py [--rows 20000] [--repeats 5] [--batch-size 512]
                                           [--width 1] [--split-cold]

The warm runs of the transformer and of (b) each execute one DataFrame built once, so neither
pays for planning in its timed runs; the driver-side cost of ``stage.transform(df)`` is printed on
its own line. With ``--split-cold``, a pass-through pandas UDF runs first in the fresh session, so
the cold figure then holds only what the transformer adds (TensorFlow import in each Python
worker, model load, tracing) and not Spark starting its Python workers.

Prints one line per measurement and the ratios; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from _machine import describe


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{describe()}, load average at start {load:.2f}"


def _images(rows: int) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images.astype(np.uint8) * 15  # 0..16 -> 0..240
    big = np.stack(
        [np.asarray(Image.fromarray(d).resize((28, 28), Image.BILINEAR)) for d in digits]
    )
    reps = -(-rows // len(big))
    return (np.tile(big, (reps, 1, 1))[:rows, :, :, None] / 255.0).astype(np.float32)


def _cnn(width: int = 1):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(16 * width, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32 * width, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--width", type=int, default=1, help="multiplies the convolution filters (16, 32)"
    )
    parser.add_argument(
        "--split-cold",
        action="store_true",
        help="start the Python workers with a pass-through UDF before the cold transform",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sparktf import TFGraphTransformer
    from sparktf._loading import keras_to_bytes, load_keras_bytes
    from sparktf._tf import configure_tensorflow
    from sparktf.session import get_spark

    cores = os.cpu_count() or 1
    print(f"machine: {_machine()}")
    print(
        f"data: {args.rows} images 28x28x1, batch size {args.batch_size}, {cores} partitions, "
        f"CNN filters {16 * args.width}/{32 * args.width}"
    )

    x = _images(args.rows)
    tf = configure_tensorflow(threads=cores)
    model = _cnn(args.width)
    model_bytes = keras_to_bytes(model)

    spark = get_spark(master=f"local[{cores}]", app_name="bench-transformer")
    pdf = pd.DataFrame({"id": np.arange(args.rows), "pixels": list(x.reshape(args.rows, -1))})
    df = spark.createDataFrame(pdf).repartition(cores).cache()
    df.count()

    def run(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    # (c) the floor of any pandas UDF here: move the arrays to Python and back, no model.
    @pandas_udf(T.ArrayType(T.FloatType()))
    def pass_through(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for series in batches:
            rows = np.stack(series.to_numpy())
            yield pd.Series(list(rows[:, :10]))

    floor_frame = df.withColumn("probs", pass_through(F.col("pixels")))
    workers_start = _timed(lambda: run(floor_frame)) if args.split_cold else None

    stage = TFGraphTransformer.fromBytes(
        model_bytes, inputCol="pixels", outputCol="probs", batchSize=args.batch_size
    )
    cold = _timed(lambda: run(stage.transform(df)))
    planning = statistics.median(_timed(lambda: stage.transform(df)) for _ in range(args.repeats))
    scored = stage.transform(df)

    # (b) predict_batch_udf with the same model (loaded from the same bytes, once per worker).
    from pyspark.ml.functions import predict_batch_udf

    broadcast = spark.sparkContext.broadcast(model_bytes)

    def make_predict_fn():
        loaded = load_keras_bytes(broadcast.value)

        def predict(inputs: np.ndarray) -> np.ndarray:
            return loaded.predict_on_batch(inputs)

        return predict

    classify = predict_batch_udf(
        make_predict_fn,
        return_type=T.ArrayType(T.FloatType()),
        batch_size=args.batch_size,
        input_tensor_shapes=[[28, 28, 1]],
    )
    baseline_frame = df.withColumn("probs", classify(F.col("pixels")))
    run(baseline_frame)  # warm-up: workers load the model

    # Warm runs, alternating, so that a change in machine load hits both alike.
    warm_runs: list[float] = []
    udf_runs: list[float] = []
    for _ in range(args.repeats):
        warm_runs.append(_timed(lambda: run(scored)))
        udf_runs.append(_timed(lambda: run(baseline_frame)))
    warm = statistics.median(warm_runs)
    udf = statistics.median(udf_runs)

    run(floor_frame)
    floor_runs = [_timed(lambda: run(floor_frame)) for _ in range(args.repeats)]
    floor = statistics.median(floor_runs)
    tf_import = _timed(
        lambda: subprocess.run([sys.executable, "-c", "import tensorflow"], check=True)
    )

    # (a) a single-process tf.function loop over the same arrays, all cores.
    spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
    call = tf.function(lambda t: model(t, training=False), input_signature=[spec])

    def loop() -> None:
        for start in range(0, args.rows, args.batch_size):
            call(x[start : start + args.batch_size]).numpy()

    loop()  # warm-up: traces the function
    loop_runs = [_timed(loop) for _ in range(args.repeats)]
    plain = statistics.median(loop_runs)

    def line(name: str, seconds: float, runs: list[float] | None = None) -> None:
        extra = f"  runs {', '.join(f'{r:.2f}' for r in runs)}" if runs else ""
        print(f"{name:<44} {seconds:7.2f} s  {args.rows / seconds:9.0f} rows/s{extra}")

    print()
    if workers_start is not None:
        line("(c) first run in the fresh session", workers_start)
        line("TFGraphTransformer, cold (workers started)", cold)
    else:
        line("TFGraphTransformer, cold (fresh session)", cold)
    line("TFGraphTransformer, warm (median)", warm, warm_runs)
    line("(a) tf.function loop, one process (median)", plain, loop_runs)
    line("(b) predict_batch_udf (median)", udf, udf_runs)
    line("(c) pass-through pandas UDF, no model (median)", floor, floor_runs)
    print(f"{'import tensorflow in a fresh interpreter':<44} {tf_import:7.2f} s")
    print(f"{'stage.transform(df) on the driver (median)':<44} {planning:7.2f} s")
    print()
    print(f"TFGraphTransformer / (a) throughput: {plain / warm:.2f}x  (target >= 0.9x)")
    print(f"TFGraphTransformer / (b) throughput: {udf / warm:.2f}x  (target >= 1.5x)")
    print(f"cold start overhead: {cold - warm:.2f} s  (target <= 5 s)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
