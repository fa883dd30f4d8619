"""Throughput of TFGraphTransformer against a plain TensorFlow loop and predict_batch_udf.

One run, same images, same model, same cores:

* ``TFGraphTransformer``: cold (first transform in a fresh SparkSession: Python workers start,
  import TensorFlow, load the model) and warm (the same transform again), on two forms of the
  same images: Spark image structs (``spark.read.format("image")``'s form: uint8 pixels in a
  binary field, scaled to [0, 1] by the transformer) and ``array<float>`` rows already scaled;
* (a) one Python process, no Spark: a ``tf.function`` over the float arrays in batches of 512
  rows, with TensorFlow using every core;
* (b) ``pyspark.ml.functions.predict_batch_udf`` with the same Keras model and batch size, on the
  ``array<float>`` rows (it takes numeric columns only, not binary or struct ones);
* both again on the same values as ``array<double>`` rows (the transformer casts them to floats on
  the JVM for its float32 input);
* (c) for scale, pandas UDFs that only move each form to Python and back (no model): the least
  any pandas-UDF inference can cost on this machine;
* the same images as PNG files' bytes (``spark.read.format("binaryFile")``'s ``content``): the
  transformer decodes them in its UDF; predict_batch_udf needs them decoded first, here by a
  pandas UDF with Pillow giving ``array<float>`` rows, then applies the model (b').

The images are N of 28x28 pixels (scikit-learn's 8x8 digits upscaled and repeated), held in cached
DataFrames with one partition per core; the model is a small CNN (two 3x3 convolutions with max
pooling, a 64-unit dense layer, 10 softmax outputs). Spark jobs run every row through the model
and write to the ``noop`` sink, so nothing is skipped.

    python benchmarks/bench_transformer.py [--rows 20000] [--repeats 5] [--batch-size 512]
                                           [--width 1] [--preload] [--split-cold]

The warm runs each execute one DataFrame built once, so none pays for planning in its timed
runs; the driver-side cost of ``stage.transform(df)`` is printed on its own line. ``--preload``
starts the session with ``preload_tensorflow=True`` (sparktf.daemon), so the cold figure then has
the daemon's one TensorFlow import instead of one per worker. With ``--split-cold``, a
pass-through pandas UDF runs first in the fresh session, so the cold figure then holds only what
the transformer adds (TensorFlow in each Python worker, model load, tracing) and not Spark
starting its Python workers.

Prints one line per measurement and the ratios; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
from _machine import describe
from _timing import timed


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{describe()}, load average at start {load:.2f}"


def _images(rows: int) -> np.ndarray:
    """``rows`` 8-bit grayscale images of 28x28x1."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images.astype(np.uint8) * 15  # 0..16 -> 0..240
    big = np.stack(
        [np.asarray(Image.fromarray(d).resize((28, 28), Image.BILINEAR)) for d in digits]
    )
    reps = -(-rows // len(big))
    return np.tile(big, (reps, 1, 1))[:rows, :, :, None]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0], "L").save(buffer, format="PNG")
    return buffer.getvalue()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--width", type=int, default=1, help="multiplies the convolution filters (16, 32)"
    )
    parser.add_argument(
        "--preload", action="store_true", help="preload TensorFlow in the Python daemon"
    )
    parser.add_argument(
        "--split-cold",
        action="store_true",
        help="start the Python workers with a pass-through UDF before the cold transform",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from pyspark.ml.image import ImageSchema
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    from sparktf import TFGraphTransformer
    from sparktf._loading import keras_to_bytes, load_keras_bytes
    from sparktf._tf import configure_tensorflow
    from sparktf.session import get_spark

    cores = os.cpu_count() or 1
    print(f"machine: {_machine()}")
    print(
        f"data: {args.rows} images 28x28x1, batch size {args.batch_size}, {cores} partitions, "
        f"CNN filters {16 * args.width}/{32 * args.width}, preload {args.preload}"
    )

    pixels = _images(args.rows)  # the images as stored: 8-bit grayscale
    x = (pixels / 255.0).astype(np.float32)  # as the model and the array<float> rows take them
    tf = configure_tensorflow(threads=cores)
    model = _cnn(args.width)
    model_bytes = keras_to_bytes(model)

    spark = get_spark(
        master=f"local[{cores}]", app_name="bench-transformer", preload_tensorflow=args.preload
    )
    image_type = ImageSchema.imageSchema["image"].dataType
    structs = spark.createDataFrame(
        [(i, ("", 28, 28, 1, 0, bytearray(p.tobytes()))) for i, p in enumerate(pixels)],
        T.StructType([T.StructField("id", T.LongType()), T.StructField("image", image_type)]),
    )
    arrays = spark.createDataFrame(
        pd.DataFrame({"id": np.arange(args.rows), "pixels": list(x.reshape(args.rows, -1))})
    )
    doubles = arrays.withColumn("pixels", F.col("pixels").cast("array<double>"))
    pngs = spark.createDataFrame(
        [(i, _png(p)) for i, p in enumerate(pixels)], "id long, content binary"
    )
    structs = structs.repartition(cores).cache()
    arrays = arrays.repartition(cores).cache()
    doubles = doubles.repartition(cores).cache()
    pngs = pngs.repartition(cores).cache()
    for frame in (structs, arrays, doubles, pngs):
        frame.count()

    def run(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    # (c) the floor of any pandas UDF here: move each form to Python and back, no model.
    @pandas_udf(T.ArrayType(T.FloatType()))
    def pass_arrays(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for series in batches:
            rows = np.stack(series.to_numpy())
            yield pd.Series(list(rows[:, :10]))

    @pandas_udf(T.ArrayType(T.FloatType()))
    def pass_structs(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        for frame in batches:
            rows = np.frombuffer(b"".join(frame["data"]), np.uint8).reshape(len(frame), -1)
            yield pd.Series(list(rows[:, :10].astype(np.float32)))

    floor_arrays = arrays.withColumn("probs", pass_arrays(F.col("pixels")))
    floor_structs = structs.withColumn("probs", pass_structs(F.col("image")))
    workers_start = timed(lambda: run(floor_structs)) if args.split_cold else None

    on_structs = TFGraphTransformer.fromBytes(
        model_bytes,
        inputCol="image",
        outputCol="probs",
        batchSize=args.batch_size,
        imageScaling="unit",
    )
    on_arrays = TFGraphTransformer.fromBytes(
        model_bytes, inputCol="pixels", outputCol="probs", batchSize=args.batch_size
    )
    cold = timed(lambda: run(on_structs.transform(structs)))
    planning = statistics.median(
        timed(lambda: on_structs.transform(structs)) for _ in range(args.repeats)
    )
    scored_structs = on_structs.transform(structs)
    scored_arrays = on_arrays.transform(arrays)
    scored_doubles = on_arrays.transform(doubles)
    scored_pngs = on_structs.copy({on_structs.inputCol: "content"}).transform(pngs)

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
    baseline_frame = arrays.withColumn("probs", classify(F.col("pixels")))
    baseline_doubles = doubles.withColumn("probs", classify(F.col("pixels")))

    # (b') encoded images: decode with Pillow in a pandas UDF, then predict_batch_udf.
    @pandas_udf(T.ArrayType(T.FloatType()))
    def decode(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from PIL import Image

        for series in batches:
            yield pd.Series(
                [
                    np.asarray(Image.open(io.BytesIO(b)).convert("L"), np.float32).ravel() / 255
                    for b in series
                ]
            )

    baseline_pngs = pngs.withColumn("probs", classify(decode(F.col("content"))))
    frames = {
        "structs": scored_structs,
        "arrays": scored_arrays,
        "doubles": scored_doubles,
        "pngs": scored_pngs,
        "udf": baseline_frame,
        "udf_doubles": baseline_doubles,
        "udf_pngs": baseline_pngs,
        "floor_structs": floor_structs,
        "floor_arrays": floor_arrays,
    }
    for frame in frames.values():
        run(frame)  # warm-up: every worker has loaded the model and traced its function

    # Warm runs, alternating, so that a change in machine load hits all alike.
    runs: dict[str, list[float]] = {name: [] for name in frames}
    for _ in range(args.repeats):
        for name, frame in frames.items():
            runs[name].append(timed(lambda frame=frame: run(frame)))
    warm = {name: statistics.median(values) for name, values in runs.items()}
    tf_import = timed(
        lambda: subprocess.run([sys.executable, "-c", "import tensorflow"], check=True)
    )

    # (a) a single-process tf.function loop over the same (float) arrays, all cores.
    spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
    call = tf.function(lambda t: model(t, training=False), input_signature=[spec])

    def loop() -> None:
        for start in range(0, args.rows, args.batch_size):
            call(x[start : start + args.batch_size]).numpy()

    loop()  # warm-up: traces the function
    loop_runs = [timed(loop) for _ in range(args.repeats)]
    plain = statistics.median(loop_runs)

    def line(name: str, seconds: float, values: list[float] | None = None) -> None:
        extra = f"  runs {', '.join(f'{r:.2f}' for r in values)}" if values else ""
        print(f"{name:<52} {seconds:7.2f} s  {args.rows / seconds:9.0f} rows/s{extra}")

    print()
    if workers_start is not None:
        line("(c) first run in the fresh session", workers_start)
        line("TFGraphTransformer, cold (workers started), structs", cold)
    else:
        line("TFGraphTransformer, cold (fresh session), structs", cold)
    line("TFGraphTransformer, warm, image structs (median)", warm["structs"], runs["structs"])
    line("TFGraphTransformer, warm, array<float> (median)", warm["arrays"], runs["arrays"])
    line("(a) tf.function loop, one process (median)", plain, loop_runs)
    line("(b) predict_batch_udf, array<float> (median)", warm["udf"], runs["udf"])
    line("TFGraphTransformer, warm, array<double> (median)", warm["doubles"], runs["doubles"])
    line("(b) predict_batch_udf, array<double> (median)", warm["udf_doubles"], runs["udf_doubles"])
    line("TFGraphTransformer, warm, PNG bytes (median)", warm["pngs"], runs["pngs"])
    line("(b') Pillow UDF + predict_batch_udf, PNG (median)", warm["udf_pngs"], runs["udf_pngs"])
    line("(c) pass-through pandas UDF, structs (median)", warm["floor_structs"])
    line("(c) pass-through pandas UDF, array<float> (median)", warm["floor_arrays"])
    print(f"{'import tensorflow in a fresh interpreter':<52} {tf_import:7.2f} s")
    print(f"{'stage.transform(df) on the driver (median)':<52} {planning:7.2f} s")
    print()
    for form in ("structs", "arrays"):
        print(
            f"TFGraphTransformer ({form}) / (a) throughput: {plain / warm[form]:.2f}x "
            f"(target >= 0.9x); / (b): {warm['udf'] / warm[form]:.2f}x (target >= 1.5x)"
        )
    on_doubles, dearer = warm["udf_doubles"] / warm["doubles"], warm["doubles"] / warm["arrays"]
    print(
        f"TFGraphTransformer (array<double>) / (b) on doubles: {on_doubles:.2f}x; doubles "
        f"take {dearer:.2f}x the time of the same values as floats"
    )
    print(
        f"TFGraphTransformer (PNG bytes) / (a) throughput: {plain / warm['pngs']:.2f}x; "
        f"/ (b'): {warm['udf_pngs'] / warm['pngs']:.2f}x"
    )
    print(f"cold start overhead: {cold - warm['structs']:.2f} s  (target <= 5 s)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
