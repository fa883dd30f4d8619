"""What tracking a halving search in MLflow costs: the same search with and without it.

    python benchmarks/bench_tracking.py --mnist ../shared/data/mnist --rows 60000 --epochs 27
    python benchmarks/bench_tracking.py --quick        # digits, a few epochs: a check only

The search (``HalvingTrainValidationSplit``, factor 3, a 9-map grid of hidden layers x learning
rate, ``refit=False``) runs once untracked and once with ``mlflowExperiment`` set, into an MLflow
file store in a temporary folder. The driver's time inside the tracker is measured directly
(each tracker call timed): the per-rung logging, divided by the trials logged, is the overhead
per trial; the search's end (report, plot, best model) is printed apart. The ratio printed is
the tracker's whole time over the untracked search's wall time; the two wall times are printed
too (on a shared machine their difference is mostly noise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import describe


def _timed(cls, names, spent):
    """Wrap ``cls``'s methods ``names`` to add their seconds to ``spent[name]``."""
    for name in names:
        method = getattr(cls, name)

        def timed(self, *args, _method=method, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _method(self, *args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - start

        setattr(cls, name, timed)


def _data(spark, args):
    from sparktf.datasets import load_digits, load_mnist

    if args.mnist:
        train = load_mnist(spark, args.mnist, "train").limit(args.rows)
        return train.cache(), [28, 28, 1]
    train, _ = load_digits(spark).randomSplit([0.8, 0.2], seed=7)
    return train.cache(), []


def _search(train, shape, args, experiment):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import ParamGridBuilder

    from sparktf import TFClassifier
    from sparktf.search import HalvingTrainValidationSplit

    clf = TFClassifier(epochs=args.epochs, batchSize=128, inputShape=shape, seed=11)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[64], [128], [256]])
        .addGrid(clf.learningRate, [3e-4, 1e-3, 3e-3])
        .build()
    )
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        trainRatio=0.8,
        factor=3,
        refit=False,
        seed=5,
        mlflowExperiment=experiment,
    )
    start = time.time()
    model = search.fit(train)
    return time.time() - start, model.searchSummary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: the digits)")
    parser.add_argument("--rows", type=int, default=60000, help="MNIST training rows")
    parser.add_argument("--epochs", type=int, default=27, help="the search's epoch budget")
    parser.add_argument("--quick", action="store_true", help="digits, 3 epochs: a check only")
    args = parser.parse_args()
    if args.quick:
        args.mnist, args.epochs = None, 3

    from sparktf.session import get_spark
    from sparktf.tracking import SearchTracker

    spent: dict[str, float] = {}
    _timed(SearchTracker, ["start", "rung", "dropped", "stopped", "search_ended"], spent)
    _timed(SearchTracker, ["finish"], spent)
    folder = tempfile.mkdtemp(prefix="sparktf-bench-tracking-")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ["MLFLOW_TRACKING_URI"] = f"file://{folder}/mlruns"

    spark = get_spark()
    train, shape = _data(spark, args)
    rows = train.count()
    print(describe())
    data = f"MNIST, {rows} rows" if args.mnist else f"digits, {rows} rows"
    print(f"{data}; 9 maps, factor 3, {args.epochs} epochs; {spark.sparkContext.master}")
    # warm-up, one epoch: the Python workers import TensorFlow
    _search(train, shape, argparse.Namespace(**{**vars(args), "epochs": 1}), "")
    plain, summary = _search(train, shape, args, "")
    tracked, _ = _search(train, shape, args, "bench")
    trials = int(summary["trialsTrained"])
    during = sum(v for k, v in spent.items() if k != "finish")
    end = spent.get("finish", 0.0)
    rungs = len(summary["rungs"])
    print(f"untracked search: {plain:.1f}s wall, {trials} trials over {rungs} rungs")
    print(f"tracked search:   {tracked:.1f}s wall")
    print(f"tracker, as the rungs end: {during:.2f}s = {1000 * during / trials:.0f} ms per trial")
    print(f"tracker, at the end (report, plot, best model): {end:.2f}s")
    print(f"tracker time / untracked wall: {100 * (during + end) / plain:.2f}%")
    spark.stop()


if __name__ == "__main__":
    main()
