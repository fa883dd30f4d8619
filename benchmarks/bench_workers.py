"""One model on two workers (``numWorkers=2``) against the same model on one task.

    python benchmarks/bench_workers.py --mnist ../shared/data/mnist --rows 60000 --epochs 3 \\
        --batches 64,512

On ``local-cluster[2,1,...]`` (two executor JVMs, one core each), the conv recipe of
docs/seed-table.md (convolutions 32/64, batch normalization, shifts and rotations, cosine
schedule, dropout 0.3, one dense layer of 128) is fitted with ``numWorkers=1`` (one task, on one
executor's core) and ``numWorkers=2`` (one barrier stage over both executors), at each global
batch size of ``--batches``. Both fits see the same rows, epochs, global batch and seed.

Prints, per batch size and number of workers: the fit's wall time, the training time, the time
per step, the set-up before training (TensorFlow, the worker processes joining), the all-reduce
of the gradients alone, and the test accuracy; then the speed-up of two workers over one. To
split a two-worker step into compute and synchronisation, it also times two independent
one-task trainings of half the batch side by side (one per core, as the two workers run): their
step is a worker's compute on this machine, and what a two-worker step takes beyond it is
synchronisation. The cost model

    step(N) = compute(B) / N x slowdown + sync

(``slowdown``: how much slower half the batch runs with the other core busy than half the
one-core step) gives the speed-up for N workers. The baseline of every ratio is the one-worker
fit at the same batch size, in the same run.

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

    start = time.time()
    model = _recipe(shape, batch, epochs, workers).fit(train)
    wall = time.time() - start
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        model.transform(test)
    )
    record = {"workers": workers, "batch": batch, "wall": wall, "accuracy": accuracy}
    worker = model.history["worker"]
    if workers == 1:
        timing = worker["timing"]
        record["train"] = timing["train"]
        record["steps"] = timing["steps"]
        record["startup"] = timing["setup"]
        record["allReduce"] = 0.0
    else:
        timing = [w["timing"] for w in worker["workers"]]
        record["train"] = max(t["train"] for t in timing)
        record["steps"] = timing[0]["steps"]
        record["startup"] = max(t["processStart"] + t["setup"] for t in timing)
        record["allReduce"] = max(t["allReduce"] for t in timing)
    record["step"] = record["train"] / max(1, record["steps"])
    return record


def _side_by_side(train, shape, batch: int, epochs: int) -> float:
    """Seconds per step of one training of ``batch`` rows per step while another runs on the
    other core: two independent one-task fits (a 2-map fitMultiple), the compute of a worker
    of a two-worker fit without its synchronisation."""
    clf = _recipe(shape, batch, epochs, 1)
    maps = [{clf.seed: 7}, {clf.seed: 8}]
    steps = []
    for _, model in clf.fitMultiple(train, maps):
        timing = model.history["worker"]["timing"]
        steps.append(timing["train"] / timing["steps"])
    return max(steps)


def _model_lines(one: dict, two: dict, busy: float, sizes=(2, 4, 8, 16)) -> list[str]:
    """The cost model ``step(N) = compute(B) / N x slowdown + sync`` from this run's figures."""
    alone = one["step"]  # the whole global batch on one core, the other core idle
    slowdown = busy / (alone / 2)  # half the batch, with the other core busy too
    sync = max(0.0, two["step"] - busy)
    predicted = ", ".join(
        f"N={n}: {alone / (alone / n * slowdown + sync):.2f}x" for n in sizes if n > 1
    )
    ideal = ", ".join(f"N={n}: {alone / (alone / n + sync):.2f}x" for n in sizes if n > 1)
    return [
        f"  per step: one worker {alone * 1000:.1f} ms (global batch, other core idle); half the "
        f"batch with the other core busy {busy * 1000:.1f} ms ({slowdown:.2f}x of half the "
        f"compute: the machine, not the workers); two workers {two['step'] * 1000:.1f} ms, so "
        f"synchronisation {sync * 1000:.1f} ms/step (the all-reduce of the gradients alone "
        f"{two['allReduce'] * 1000:.1f} ms)",
        f"  model step(N) = compute/N x {slowdown:.2f} + {sync * 1000:.1f} ms: speed-up "
        f"{predicted}; on executors that do not slow each other down: {ideal}",
    ]


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
                f"{record['steps']} steps, setup {record['startup']:5.1f} s, "
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
        busy = _side_by_side(train, shape, batch // 2, args.epochs)
        for line in _model_lines(one, two, busy):
            print(line, flush=True)
        records.append({"batch": batch, "sideBySideStep": busy})
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(records, handle, indent=1)
    spark.stop()


if __name__ == "__main__":
    main()
