"""The halving search against the exhaustive one, and all folds at once against CrossValidator.

    python benchmarks/bench_halving.py --mnist ../shared/data/mnist --rows 60000 --epochs 27 \\
        --factors 3,4 --slots 6

Part 1 (quality at a fraction of the cost): the same 16-map grid (hidden layers x learning rate
x dropout) through ``HalvingTrainValidationSplit`` with ``factor=1`` (exhaustive: every map
trains every epoch) and with ``factor=3``, on the same split; both with ``refit=False`` so the
figures are the searches' own. Prints each search's wall time, task-seconds (the training time
of every trial, summed), best validation accuracy and that model's test accuracy, and the
ratios halving / exhaustive.

Part 2 (slot use, with ``--slots``): a 3-fold search of 2 maps through pyspark's
``CrossValidator`` and through ``HalvingCrossValidator(factor=1)`` on ``local[slots]``; prints
the most trainings that ran at once and the share of slot-time spent training.

Without ``--mnist`` the bundled digits are used (a quick check, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import describe


def _grid(clf):
    from pyspark.ml.tuning import ParamGridBuilder

    return (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[128], [512]])
        .addGrid(clf.learningRate, [3e-4, 1e-3, 3e-3, 3e-2])
        .addGrid(clf.dropout, [0.0, 0.3])
        .build()
    )


def _data(spark, args):
    from sparktf.datasets import load_digits, load_mnist

    if args.mnist:
        train = load_mnist(spark, args.mnist, "train").limit(args.rows)
        test = load_mnist(spark, args.mnist, "test")
        # images: standardized per channel (one mean and variance over all pixels), as the
        # peer's pixels / 255 are scaled, rather than per pixel
        return train.cache(), test.cache(), [28, 28, 1]
    train, test = load_digits(spark).randomSplit([0.8, 0.2], seed=7)
    return train.cache(), test.cache(), []


def _search(train, test, factor, args, shape):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier
    from sparktf.search import HalvingTrainValidationSplit

    clf = TFClassifier(epochs=args.epochs, batchSize=128, inputShape=shape, seed=11)
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=_grid(clf),
        evaluator=evaluator,
        trainRatio=0.8,
        factor=factor,
        refit=False,
        seed=5,
    )
    start = time.time()
    model = search.fit(train)
    wall = time.time() - start
    best = model.searchSummary["best"]
    return {
        "wall": wall,
        "taskSeconds": model.searchSummary["taskSeconds"],
        "validation": model.validationMetrics[best],
        "test": evaluator.evaluate(model.transform(test)),
        "rungs": model.searchSummary["rungs"],
        "jobs": model.searchSummary["jobs"],
        "best": best,
    }


def _overlap(intervals):
    """The most intervals open at once, and their summed length."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most, sum(e - s for s, e in intervals)


def _slot_use(args):
    """Part 2 in a session of its own on local[slots]."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from sparktf import TFClassifier
    from sparktf.search import HalvingCrossValidator

    spark = __import__("sparktf.session", fromlist=["get_spark"]).get_spark(
        master=f"local[{args.slots}]"
    )
    train = _data(spark, args)[0]
    clf = TFClassifier(epochs=args.epochs, batchSize=128, hiddenLayers=[128])
    grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-3, 3e-3]).build()
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    rows = []
    for name, validator in (
        ("pyspark CrossValidator", CrossValidator(collectSubModels=True)),
        ("HalvingCrossValidator(factor=1)", HalvingCrossValidator(factor=1, refit=False)),
    ):
        validator.setEstimator(clf).setEstimatorParamMaps(grid).setEvaluator(evaluator)
        validator._set(numFolds=3, collectSubModels=True)
        start = time.time()
        model = validator.fit(train)
        wall = time.time() - start
        workers = [m.history["worker"] for fold in model.subModels for m in fold]
        most, busy = _overlap([(w["started"], w["finished"]) for w in workers])
        rows.append((name, wall, most, busy / (wall * args.slots)))
    print(f"\nslot use: 3 folds x 2 maps on local[{args.slots}] ({args.rows} rows)")
    for name, wall, most, share in rows:
        print(
            f"  {name:34s} {wall:7.1f}s  at most {most} at once  training {share:5.1%} of slot-time"
        )
    print(f"  ratio of wall times (sparktf / pyspark): {rows[1][1] / rows[0][1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: the digits)")
    parser.add_argument("--rows", type=int, default=12000, help="MNIST training rows used")
    parser.add_argument("--epochs", type=int, default=9, help="the full budget of every map")
    parser.add_argument(
        "--factors",
        type=lambda text: [int(f) for f in text.split(",")],
        default=[3],
        help="halving factors measured against the exhaustive search (comma-separated)",
    )
    parser.add_argument("--slots", type=int, default=0, help="run part 2 on local[SLOTS]")
    parser.add_argument("--skip-search", action="store_true", help="part 2 only")
    args = parser.parse_args()
    print(describe())
    if not args.skip_search:
        from sparktf.session import get_spark

        spark = get_spark()
        train, test, shape = _data(spark, args)
        runs = {f: _search(train, test, f, args, shape) for f in [1, *args.factors]}
        full = runs[1]
        print(f"\n16 maps, {args.epochs} epochs, {train.count()} rows, train/validation 0.8")
        for factor, r in runs.items():
            name = "exhaustive (factor=1)" if factor == 1 else f"halving (factor={factor})"
            print(
                f"  {name:22s} wall {r['wall']:7.1f}s  task-seconds {r['taskSeconds']:7.1f}  "
                f"best map {r['best']:2d}: validation {r['validation']:.4f}, test {r['test']:.4f}"
            )
        slots = spark.sparkContext.defaultParallelism
        for factor, r in runs.items():
            for job in r["jobs"]:
                busy = job["taskSeconds"] / (job["wall"] * slots)
                print(
                    f"  factor {factor} rung {job['rung']}: {job['trials']:2d} trials, wall "
                    f"{job['wall']:6.1f}s, training {busy:5.1%} of {slots} slots' time"
                )
        for factor in args.factors:
            half = runs[factor]
            print(
                f"  factor {factor} / exhaustive: wall {half['wall'] / full['wall']:.2f}, "
                f"task-seconds {half['taskSeconds'] / full['taskSeconds']:.2f}, validation "
                f"{100 * (half['validation'] - full['validation']):+.2f} points, rungs "
                + ", ".join(f"{r['maps']} x {r['epochs']}" for r in half["rungs"])
            )
        spark.stop()
    if args.slots:
        _slot_use(args)


if __name__ == "__main__":
    main()
