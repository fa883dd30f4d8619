"""The original tuning experiment: a convolutional network tuned over neurons x learning rate.

Every setting of every fold trains as its own Spark task (``TFClassifier.fitMultiple``), so a
cluster trains as many networks at once as it has task slots. ``tune_classifier`` runs the
CrossValidator, prints the tuning report, saves the sensitivity plot (accuracy against learning
rate, one line per number of neurons), the report as CSV and the best network, and prints the
test accuracy of the best network: the same workflow as ``sparktf tune``.

Usage::

    python examples/tune_mnist.py                 # scikit-learn digits (bundled, 8x8 pixels)
    python examples/tune_mnist.py /data/mnist     # the MNIST IDX files (gzipped or not)
    python examples/tune_mnist.py --quick         # small settings (also: SPARKTF_QUICK=1)

The Spark master comes from ``$SPARKTF_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import argparse
import os

from sparktf import get_spark
from sparktf.datasets import load_digits, load_mnist
from sparktf.workflow import SearchSpace, tune_classifier


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
    space = SearchSpace(
        convLayers=[[8 if quick else 16]],
        hiddenLayers=[[16], [32]] if quick else [[32], [64], [128]],
        learningRate=[0.003, 0.03] if quick else [0.001, 0.003, 0.01, 0.03],
        epochs=[2 if quick else 10],
    )
    result = tune_classifier(
        train,
        args.output,
        test=test,
        space=space,
        input_shape=shape,
        dropout=0.1,
        folds=2,
        seed=3,
        parallelism=4,  # models scored at once; each fold trains its grid as one Spark job
        echo=print,
    )
    print(f"Tuned {len(result.report)} settings x 2 folds in {result.seconds:.0f}s")


if __name__ == "__main__":
    main()
