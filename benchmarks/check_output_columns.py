"""The classifier's output columns on real MNIST, against the network's own outputs.

Two checks on the MNIST IDX files (all 60,000 training and 10,000 test images), each printing
sparktf's figure, the baseline's and their ratio (1.000 is right):

* **softmax**: a ``kerasModel`` whose last layer is ``keras.layers.Softmax()``, 10 classes. The
  ``probability`` column's mean top probability and Spark's ``logLoss`` on ``transform``, against
  the same figures from the fitted network's own ``predict`` (Spark's formula: P clipped at 1e-15).
* **binary**: the built-in network on the 3s and 8s (label 1 for an 8). Spark's
  ``BinaryClassificationEvaluator`` ``areaUnderROC`` on ``transform`` (it ranks by
  ``rawPrediction[1]``), against scikit-learn's ``roc_auc_score`` on ``probability[1]``.

    python benchmarks/check_output_columns.py ../shared/data/mnist [--epochs 2]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _machine import describe


def _softmax_model(keras):
    inputs = keras.Input((784,))
    hidden = keras.layers.Dense(128, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(10)(hidden)))


def _columns(frame):
    rows = frame.select("features", "label", "probability").collect()
    x = np.array([r["features"].toArray() for r in rows], dtype=np.float32)
    y = np.array([r["label"] for r in rows])
    return x, y, np.array([r["probability"].toArray() for r in rows])


def _line(name: str, ours: float, baseline: float) -> None:
    print(f"  {name:<34} sparktf {ours:.4f}  network {baseline:.4f}  ratio {ours / baseline:.3f}")


def check_softmax(train, test, epochs: int) -> None:
    import keras
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier

    model = TFClassifier(kerasModel=_softmax_model(keras), epochs=epochs, seed=7).fit(train)
    scored = model.transform(test)
    x, y, probability = _columns(scored)
    own = model.keras_model().predict(x, verbose=0).astype(np.float64)
    own = own / own.sum(axis=1, keepdims=True)
    spark_loss = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(scored)
    print(f"softmax output, {train.count()} training rows, {len(y)} test rows:")
    _line("mean top probability", probability.max(axis=1).mean(), own.max(axis=1).mean())
    # Spark's definition: the mean of -log(P(label)) with P clipped at 1e-15
    own_loss = -np.log(np.clip(own[np.arange(len(y)), y.astype(int)], 1e-15, None)).mean()
    _line("logLoss (Spark / the same formula)", spark_loss, own_loss)


def check_binary(train, test, epochs: int) -> None:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F
    from sklearn.metrics import roc_auc_score

    from sparktf import TFClassifier

    def three_or_eight(frame):
        kept = frame.filter(F.col("label").isin(3.0, 8.0))
        return kept.withColumn("label", (F.col("label") == 8.0).cast("double"))

    train, test = three_or_eight(train), three_or_eight(test)
    model = TFClassifier(hiddenLayers=[32], epochs=epochs, seed=7).fit(train)
    scored = model.transform(test)
    _, y, probability = _columns(scored)
    spark_auc = BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(scored)
    print(f"3 against 8, {train.count()} training rows, {len(y)} test rows:")
    _line("areaUnderROC (Spark / scikit-learn)", spark_auc, roc_auc_score(y, probability[:, 1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist", help="folder of the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sparktf.datasets import load_mnist
    from sparktf.session import get_spark

    spark = get_spark(master=f"local[{os.cpu_count() or 1}]", app_name="check-output-columns")
    print(describe())
    train = load_mnist(spark, args.mnist, "train").cache()
    test = load_mnist(spark, args.mnist, "test").cache()
    check_softmax(train, test, args.epochs)
    check_binary(train, test, args.epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
