"""One model on two workers (``numWorkers=2``) against the same model on one task.

    python benchmarks/bench_workers.py --mnist ../shared/data/mnist --rows 60000 --epochs 3 \\
        --batches 64,512

On ``local-cluster[2,1,...]`` (two executor JVMs, one core each), the conv recipe of
docs/seed-table.md (convolutions 32/64, batch normalization, shifts and rotations, cosine
schedule, dropout 0.3, one dense layer of 128) is fitted with ``numWorkers=1`` (one task, on one
executor's core) and ``numWorkers=2`` (one barrier stage over both executors), at each global
batch size of ``--batches``. Both fits see the same rows, epochs, global batch and seed.

Prints, per batch size and number of workers: the fit's wall time, the training time, the time
per step, the startup of the worker processes, the all-reduce of the gradients alone, and the
test accuracy; then the speed-up of two workers over one and the cost model

    step(k) = compute / k + sync

with ``compute`` the one-worker step (the whole global batch on one core) and ``sync`` what a
two-worker step takes beyond half of it; the model's step time for N workers follows from it.
The baseline of every ratio is the one-worker fit at the same batch size, in the same run.

Without ``--mnist`` the bundled digits are used (a quick check, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import describe


def _data(spark, args):
    from sparktf.datasets import load_digits, load_mnist

    if args.mnist:
        train = load_mnist(spark, args.mnist, "train", num_partitions=4).limit(args.rows)
        test = load_mnist(spark, args.mnist, "test", num_partitions=4)
        return train.cache(), test.cache(), [28, 28, 1]
    train, test = load_digits(spark).randomSplit([0.8, 0.2], seed=7)
    return train.cache(), test.cache(), [8, 8, 1]


def _recipe(shape, batch: int, epochs: int, workers: int):
    from sparktf import TFClassifier

    return TFClassifier(
        convLayers=[32, 64],
        inputShape=shape,
        hiddenLayers=[128],
        batchNormalization=True,
        augmentShift=0.1,
        augmentRotation=10.0,
        learningRateSchedule="cosine",
        learningRate=0.001 * max(1.0, batch / 64) ** 0.5,  # larger batches, larger steps
        dropout=0.3,
        epochs=epochs,
        batchSize=batch,
        numWorkers=workers,
        seed=7,
    )


def _fit(train, test, shape, batch: int, epochs: int, workers: int) -> dict:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    rows = train.count()
    start = time.time()
    model = _recipe(shape, batch, epochs, workers).fit(train)
    wall = time.time() - start
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        model.transform(test)
    )
    record = {"workers": workers, "batch": batch, "wall": wall, "accuracy": accuracy}
    worker = model.history["worker"]
    epochs_run = len(model.history["epochs"]["loss"])
    if workers == 1:
        record["train"] = model.history["seconds"]
        record["steps"] = epochs_run * -(-rows // batch)
        record["startup"] = 0.0
        record["allReduce"] = 0.0
    else:
        timing = [w["timing"] for w in worker["workers"]]
        record["train"] = max(t["train"] for t in timing)
        record["steps"] = timing[0]["steps"]
        record["startup"] = max(t["processStart"] + t["setup"] for t in timing)
        record["allReduce"] = max(t["allReduce"] for t in timing)
    record["step"] = record["train"] / max(1, record["steps"])
    return record


def _model_line(one: dict, two: dict, sizes=(2, 4, 8, 16)) -> str:
    compute = one["step"]
    sync = max(0.0, two["step"] - compute / 2)
    predicted = ", ".join(f"N={n}: {compute / (compute / n + sync):.2f}x" for n in sizes if n > 1)
    return (
        f"  model: compute {compute * 1000:.1f} ms/step on one core, sync "
        f"{sync * 1000:.1f} ms/step (all-reduce of the gradients alone "
        f"{two['allReduce'] * 1000:.1f} ms); step speed-up "
        f"predicted {predicted}; pays when compute > 2 x sync = {2 * sync * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: digits)")
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", default="64,512", help="global batch sizes, comma-separated")
    parser.add_argument("--master", default="local-cluster[2,1,3072]")
    parser.add_argument("--json", help="write the records to this file")
    args = parser.parse_args()

    from sparktf.session import get_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = get_spark(master=args.master, app_name="sparktf-bench-workers")
    train, test, shape = _data(spark, args)
    rows = train.count()
    print(f"machine: {describe()}")
    print(f"master {args.master}; {rows} training rows, {test.count()} test rows; conv recipe")
    records = []
    for batch in [int(b) for b in args.batches.split(",")]:
        pair = {}
        for workers in (1, 2):
            record = _fit(train, test, shape, batch, args.epochs, workers)
            records.append(record)
            pair[workers] = record
            print(
                f"batch {batch:4d}, {workers} worker(s): fit {record['wall']:7.1f} s, training "
                f"{record['train']:7.1f} s, {record['step'] * 1000:6.1f} ms/step over "
                f"{record['steps']} steps, worker start {record['startup']:5.1f} s, "
                f"test accuracy {record['accuracy']:.4f}",
                flush=True,
            )
        one, two = pair[1], pair[2]
        print(
            f"  2 workers / 1 worker (baseline: the 1-worker fit at batch {batch}): fit "
            f"{one['wall'] / two['wall']:.2f}x faster, training {one['train'] / two['train']:.2f}x,"
            f" per step {one['step'] / two['step']:.2f}x; accuracy "
            f"{(two['accuracy'] - one['accuracy']) * 100:+.2f} points"
        )
        print(_model_line(one, two))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(records, handle, indent=1)
    spark.stop()


if __name__ == "__main__":
    main()
