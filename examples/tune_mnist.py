"""The original tuning experiment: a convolutional network tuned over neurons x learning rate.

Every setting of every fold trains as its own Spark task (``TFClassifier.fitMultiple``), so a
cluster trains as many networks at once as it has task slots. The script prints the tuning
report, saves the sensitivity plot (accuracy against learning rate, one line per number of
neurons) and the test accuracy of the best network.

Usage::

    python examples/tune_mnist.py                 # scikit-learn digits (bundled, 8x8 pixels)
    python examples/tune_mnist.py /data/mnist     # the MNIST IDX files (gzipped or not)
    python examples/tune_mnist.py --quick         # small settings (also: SPARKTF_QUICK=1)

The Spark master comes from ``$SPARKTF_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import argparse
import os
import time

from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

from sparktf import TFClassifier, get_spark, plot_sensitivity, tuning_report
from sparktf.datasets import load_digits, load_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist_dir", nargs="?", help="folder with the MNIST IDX files")
    parser.add_argument("--quick", action="store_true", help="small settings for a fast run")
    parser.add_argument("--output", default="tune_mnist_output", help="folder for the results")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("SPARKTF_QUICK") == "1"

    spark = get_spark(app_name="tune_mnist")
    if args.mnist_dir:
        train = load_mnist(spark, args.mnist_dir, "train")
        test = load_mnist(spark, args.mnist_dir, "test")
        shape = [28, 28, 1]
        if quick:
            train = train.limit(2000)
    else:
        train, test = load_digits(spark).randomSplit([0.8, 0.2], seed=1)
        shape = [8, 8, 1]
    train = train.cache()

    # A small convolutional network: one 3x3 convolution block, then one dense layer whose
    # number of neurons is tuned together with the learning rate.
    clf = TFClassifier(convLayers=[8 if quick else 16], inputShape=shape, dropout=0.1, seed=3)
    neurons = [[16], [32]] if quick else [[32], [64], [128]]
    rates = [0.003, 0.03] if quick else [0.001, 0.003, 0.01, 0.03]
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, neurons)
        .addGrid(clf.learningRate, rates)
        .baseOn({clf.epochs: 2 if quick else 10})
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=2,
        seed=3,
        parallelism=4,  # models scored at once; each fold trains its grid as one Spark job
    )

    start = time.time()
    model = cv.fit(train)
    print(f"Tuned {len(grid)} settings x 2 folds in {time.time() - start:.0f}s")

    report = tuning_report(model, clf)
    table = report.drop(columns=["metric", "failure"])
    print(table.to_string(index=False, float_format="{:.4f}".format))
    os.makedirs(args.output, exist_ok=True)
    path = plot_sensitivity(
        report, x="learningRate", line="hiddenLayers", path=f"{args.output}/sensitivity.png"
    )
    print(f"Sensitivity plot: {path}")
    accuracy = evaluator.evaluate(model.bestModel.transform(test))
    print(f"Test accuracy of the best model: {accuracy:.4f}")


if __name__ == "__main__":
    main()
