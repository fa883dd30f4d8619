"""Throughput of TFClassificationModel.transform against predict_batch_udf on the same network.

A TFClassifier is fitted (one epoch) on MNIST's 60,000 training images, then both sides score
the same cached rows (all 70,000 images by default: training and test) on the same cores:

* sparktf: ``model.transform(df)``, which writes ``rawPrediction`` and ``probability`` (ml
  Vectors) and ``prediction``; and the same with ``freezeModel=True`` (the network as a frozen
  graph);
* the baseline: ``pyspark.ml.functions.predict_batch_udf`` with the same Keras model (loaded
  once per worker from the same ``.keras`` bytes), fed the same ml Vectors through
  ``vector_to_array(features, "float32")``, with a softmax in numpy, writing only the
  probabilities (``array<float>``): less output than sparktf writes, so the comparison
  favours the baseline.

* the floor: a pandas UDF that only moves the same vectors to Python and returns one number
  per row, the least any pandas-UDF inference costs here;
* the floor of the classifier's output: the same UDF returning constant rows of sparktf's
  three columns (two arrays made ml Vectors on the JVM, and a double), no model: the least
  any transform writing those columns costs here.

Each side runs once to warm up (workers start, import TensorFlow, load the model), then the
timed runs alternate between the sides, each writing every row to the ``noop`` sink.

    python benchmarks/bench_classifier_transform.py --mnist ../shared/data/mnist
        [--rows 70000] [--repeats 5] [--batch-size 1024] [--conv]

Without ``--mnist`` (or when the folder is missing) it uses scikit-learn's 1,797 digits,
repeated to ``--rows``. Prints one line per measurement and the ratio baseline / sparktf
(above 1: sparktf is faster); docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Iterator

import numpy as np
import pandas as pd
from _machine import describe
from _timing import timed


def _data(spark, args):
    from sparktf.datasets import load_digits, load_mnist

    if args.mnist and os.path.isdir(args.mnist):
        train = load_mnist(spark, args.mnist, "train")
        test = load_mnist(spark, args.mnist, "test")
        return train, train.unionByName(test), "MNIST"
    digits = load_digits(spark)
    repeated = digits
    while repeated.count() < args.rows:
        repeated = repeated.unionByName(repeated)
    return digits, repeated, "scikit-learn digits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", default="", help="folder of the MNIST IDX files")
    parser.add_argument("--rows", type=int, default=70_000, help="rows scored per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per TensorFlow call")
    parser.add_argument("--conv", action="store_true", help="the convolutional recipe")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    from pyspark.ml.functions import array_to_vector, predict_batch_udf, vector_to_array
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    from sparktf import TFClassifier, get_spark

    spark = get_spark(master=args.master, app_name="bench_classifier_transform")
    print(f"machine: {describe()}, master {args.master}")
    train, scored, source = _data(spark, args)
    side = {"convLayers": [32, 64], "inputShape": [28, 28, 1]} if args.conv else {}
    clf = TFClassifier(epochs=1, predictBatchSize=args.batch_size, **side)
    model = clf.fit(train)
    df = scored.limit(args.rows).select("features").repartition(2).cache()
    rows = df.count()
    print(f"data: {source}, {rows} rows scored; network: {'conv' if args.conv else 'MLP'}")

    model_bytes = model.modelBytes
    shared = spark.sparkContext.broadcast(model_bytes)
    features = model.numFeatures

    def make_predict_fn():
        from sparktf._loading import load_keras_bytes

        network = load_keras_bytes(shared.value)

        def predict(inputs: np.ndarray) -> np.ndarray:
            logits = np.asarray(network.predict_on_batch(inputs), np.float64)
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

        return predict

    classify = predict_batch_udf(
        make_predict_fn,
        return_type=T.ArrayType(T.FloatType()),
        batch_size=args.batch_size,
        input_tensor_shapes=[[features]],
    )

    @pandas_udf(T.DoubleType())
    def floor(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for series in batches:
            yield pd.Series(np.zeros(len(series)))

    @pandas_udf("raw array<double>, probability array<double>, prediction double")
    def floor_outputs(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for series in batches:
            rows = np.zeros((len(series), model.numClasses))
            yield pd.DataFrame(
                {"raw": list(rows), "probability": list(rows), "prediction": rows[:, 0]}
            )

    outputs = floor_outputs(vector_to_array("features", "float32")).alias("out")
    frames = {
        "sparktf": model.transform(df),
        "sparktf frozen": model.copy({model.freezeModel: True}).transform(df),
        "predict_batch_udf": df.select(
            "features", classify(vector_to_array("features", "float32")).alias("probability")
        ),
        "floor": df.select("features", floor(vector_to_array("features", "float32")).alias("z")),
        "floor, 3 columns": df.select("features", outputs).select(
            "features",
            array_to_vector("out.raw").alias("rawPrediction"),
            array_to_vector("out.probability").alias("probability"),
            F.col("out.prediction").alias("prediction"),
        ),
    }

    def run(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    for frame in frames.values():
        run(frame)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in frames}
    for _ in range(args.repeats):
        for name, frame in frames.items():
            times[name].append(timed(lambda frame=frame: run(frame)))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in median.items():
        rate = rows / seconds
        print(f"{name:>18}: {seconds:.2f} s median of {args.repeats} ({rate:,.0f} rows/s)")
    for name in ("sparktf", "sparktf frozen"):
        ratio = median["predict_batch_udf"] / median[name]
        print(f"ratio predict_batch_udf / {name}: {ratio:.2f}x (above 1: sparktf is faster)")
    above = {
        name: median[name] - median["floor"]
        for name in ("sparktf", "sparktf frozen", "predict_batch_udf")
    }
    print(
        "above the floor (moving the vectors to Python and back, no model): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in above.items())
    )
    best = median["predict_batch_udf"] / median["floor, 3 columns"]
    print(f"the most sparktf could reach writing its 3 columns, model free: {best:.2f}x")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
