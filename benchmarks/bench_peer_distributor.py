"""Data-parallel training: sparktf against Databricks' spark-tensorflow-distributor, on MNIST.

    pip install -e ".[bench]"     # spark-tensorflow-distributor>=1.0 (it declares no dependencies)
    python benchmarks/bench_peer_distributor.py --mnist ../shared/data/mnist --rows 30000 \\
        --epochs 3 --batch 128 --master "local-cluster[2,1,3072]" --model mlp

The peer is ``spark_tensorflow_distributor.MirroredStrategyRunner(num_slots=k,
local_mode=False, use_gpu=False).run(train_fn)``: k barrier Spark tasks, each running
``train_fn`` inside a ``tf.distribute.MultiWorkerMirroredStrategy`` of k workers that it sets
up (``TF_CONFIG`` from the tasks' addresses). The ``train_fn`` is what a user of the peer writes:
the first ``--rows`` MNIST training images travel in its closure (uint8, divided by 255 inside),
it builds the network, compiles it (Adam 1e-3, sparse categorical cross-entropy from logits),
calls ``model.fit`` with the global batch ``--batch`` for ``--epochs`` epochs, and returns the
trained weights from the chief task. The driver then scores them on the 10,000 MNIST test
images (not timed, as sparktf's ``transform`` is not).

sparktf is ``TFClassifier(numWorkers=k)`` with the same network (``hiddenLayers=[128]``,
``dropout=0.0``; ``convLayers=[32, 64]`` and ``inputShape=[28, 28, 1]`` for ``--model conv``),
optimizer, learning rate, epochs and ``batchSize=--batch``, fitted on a DataFrame of the same
rows (``features`` ml Vector, ``label``) read from Parquet files written before the timing starts
(where a user's training data would be; a DataFrame built from the driver's arrays would make
``fit`` ship them to the executors and back); its test accuracy is that of ``transform`` on the test
rows (``MulticlassClassificationEvaluator``).

The networks: ``mlp`` is Dense(128, relu) -> Dense(10 logits); ``conv`` is Conv2D(32, 3x3, same,
relu) -> MaxPooling 2x2 -> Conv2D(64, 3x3, same, relu) -> MaxPooling 2x2 -> Flatten ->
Dense(128, relu) -> Dense(10 logits), sparktf's conv recipe.

Where the two cannot be made the same:

* data: the peer's rows come in its closure from the driver's memory (the peer takes no
  DataFrame); sparktf's are read from Parquet inside ``fit``;
* pixels: the peer divides by 255; sparktf standardizes each feature (its default);
* threads: the peer's tasks run TensorFlow's default thread pools (every core of the machine
  per task; ``--peer-threads N`` sets ``TF_NUM_INTRAOP_THREADS=N`` in the peer's executors),
  sparktf's use ``spark.task.cpus`` threads (1 on ``local-cluster[2,1,...]``);
* retries: the peer's sessions set ``spark.task.maxFailures=1``, so a failing barrier stage
  fails once instead of being run four times (the failure is deterministic).

Every measurement (runner, k) gets a fresh SparkSession on ``--master``, so each starts on new
executors (new Python workers, TensorFlow not yet imported) and no TensorFlow state of one run
leaks into the next; the session's start is not timed, the first job's Python workers and
TensorFlow import are (for both runners). Wall seconds: ``run(train_fn)`` for the peer,
``fit(df)`` for sparktf. A run that fails is reported with its Python error (the first line,
and the last where the message runs over several) and the time until it failed, and the script
goes on.

``--repeats N`` runs each measurement N times (each in its own session) and shows the median
wall time (a failing run is not repeated): single runs on a 2-core machine vary by tens of
percent.

Prints one line per run and the ratios sparktf k=1 against the peer k=1 (peer wall / sparktf
wall: above 1 means sparktf is faster) and sparktf k=2 against sparktf k=1, and the machine's
load average at the start and at the end (other work on the machine skews every wall time).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from _machine import describe

LEARNING_RATE = 1e-3
SEED = 11
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_MNIST = os.path.normpath(os.path.join(_ROOT, "..", "shared", "data", "mnist"))


def _mnist(directory: str, rows: int):
    """(x_train, y_train, x_test, y_test): uint8 pixels as flat rows of 784, int64 labels."""
    from sparktf.datasets import _MNIST_FILES, _find, read_idx

    def split(name):
        images, labels = _MNIST_FILES[name]
        x = read_idx(_find(directory, images))
        y = read_idx(_find(directory, labels))
        return x.reshape(len(x), -1), y.astype(np.int64)

    x, y = split("train")
    x_test, y_test = split("test")
    return x[:rows], y[:rows], x_test, y_test


def _session(args, peer: bool):
    """A fresh SparkSession on ``--master`` (the previous one is stopped by the caller)."""
    import sparktf
    from sparktf.session import get_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    # The executors import the sparktf the driver imported (a worktree, not the installed one).
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sparktf.__file__)))
    conf = {
        "spark.executor.memory": args.executor_memory,
        "spark.executorEnv.PYTHONPATH": package_root,
    }
    if peer:
        conf["spark.task.maxFailures"] = "1"
        if args.peer_threads:
            conf["spark.executorEnv.TF_NUM_INTRAOP_THREADS"] = str(args.peer_threads)
    spark = get_spark(master=args.master, app_name="bench_peer_distributor", conf=conf)
    _wait_for_executors(spark, args.master)
    return spark


def _keras_model(keras, kind: str):
    """The benchmark's network (logits out), on flat rows of 784 pixels."""
    layers = [keras.Input((784,))]
    if kind == "conv":
        layers += [
            keras.layers.Reshape((28, 28, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
        ]
    layers += [keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    return keras.Sequential(layers)


def _compile(keras, model):
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _peer_train_fn(x_train, y_train, kind: str, epochs: int, batch: int):
    """The function MirroredStrategyRunner runs in each task (inside its strategy's scope)."""

    def train_fn():
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(SEED)
        model = _compile(keras, _keras_model(keras, kind))
        started = time.time()
        model.fit(
            x_train.astype(np.float32) / 255.0,
            y_train,
            batch_size=batch,
            epochs=epochs,
            verbose=0,
        )
        return {
            "weights": model.get_weights(),
            "fit_seconds": time.time() - started,
            "replicas": tf.distribute.get_strategy().num_replicas_in_sync,
            # TF_NUM_INTRAOP_THREADS (--peer-threads) takes effect without showing here.
            "threads": tf.config.threading.get_intra_op_parallelism_threads()
            or os.environ.get("TF_NUM_INTRAOP_THREADS"),
        }

    return train_fn


def _error_text(exc: BaseException) -> str:
    """The Python error a failed Spark job carries (else ``exc``): its first line, and where
    the message runs over several lines (as the PerReplica one does), ``...`` and its last."""
    lines = str(exc).splitlines()
    pattern = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception)\b:?")
    starts = [
        i
        for i, line in enumerate(lines)
        if pattern.match(line) and not line.startswith(("py4j.", "org.apache.", "java.", "scala."))
    ]
    if not starts:  # not a Python error shipped back by Spark
        return next((line.strip() for line in lines if line.strip()), repr(exc))
    start = starts[-1]  # the innermost cause is printed last
    message = []
    for line in lines[start:]:
        if line.strip().startswith(("SQLSTATE", "at ")) or not line.strip():
            break
        message.append(line.strip())
    if len(message) == 1:
        return message[0]
    return f"{message[0]} ... {message[-1]}"


def _wait_for_executors(spark, master: str, timeout: float = 120.0) -> None:
    """Wait until a local-cluster's executors have registered, so that no run's wall time
    counts their start (a barrier stage would wait for them, in 15 s steps)."""
    found = re.fullmatch(r"local-cluster\[(\d+),\s*\d+,\s*\d+\]", master)
    if not found:
        return
    wanted = int(found.group(1))
    context = spark.sparkContext._jsc.sc()
    deadline = time.time() + timeout
    # The block managers of the executors and of the driver.
    while context.getExecutorMemoryStatus().size() - 1 < wanted and time.time() < deadline:
        time.sleep(0.2)


def _peer_accuracy(weights, kind: str, x_test, y_test) -> float:
    """Test accuracy of the peer's trained weights, scored on the driver."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sparktf._quiet import import_tensorflow

    import_tensorflow()
    import keras

    model = _keras_model(keras, kind)
    model.set_weights(weights)
    logits = model.predict(x_test.astype(np.float32) / 255.0, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y_test))


def _run_peer(args, k: int, data) -> dict:
    from spark_tensorflow_distributor import MirroredStrategyRunner

    x_train, y_train, x_test, y_test = data
    spark = _session(args, peer=True)
    result = {"runner": "peer", "k": k}
    try:
        runner = MirroredStrategyRunner(num_slots=k, local_mode=False, use_gpu=False)
        train_fn = _peer_train_fn(x_train, y_train, args.model, args.epochs, args.batch)
        out = _timed(lambda: runner.run(train_fn), result)
        if "error" in result:
            return result
        result["accuracy"] = _peer_accuracy(out["weights"], args.model, x_test, y_test)
        threads = out["threads"] or f"TF default ({os.cpu_count()} cores)"
        result["note"] = (
            f"fit {out['fit_seconds']:.1f}s in the chief task, "
            f"{out['replicas']} replica(s) in sync, intra-op threads {threads}"
        )
        return result
    finally:
        spark.stop()


def _timed(call, result: dict):
    """``call()``'s value, its wall seconds in ``result["wall"]``; a failure in ``error``."""
    started = time.time()
    try:
        return call()
    except Exception as exc:
        result["error"] = _error_text(exc)
        return None
    finally:
        result["wall"] = time.time() - started


def _sparktf_classifier(args, k: int):
    from sparktf import TFClassifier

    params = {
        "hiddenLayers": [128],
        "dropout": 0.0,
        "epochs": args.epochs,
        "batchSize": args.batch,
        "learningRate": LEARNING_RATE,
        "optimizer": "adam",
        "seed": SEED,
    }
    if args.model == "conv":
        params.update(convLayers=[32, 64], inputShape=[28, 28, 1])
    return TFClassifier(numWorkers=k, **params)


def _run_sparktf(args, k: int, data) -> dict:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf.datasets import arrays_to_dataframe

    x_train, y_train, x_test, y_test = data
    spark = _session(args, peer=False)
    folder = tempfile.mkdtemp(prefix="bench_peer_distributor-")
    result = {"runner": "sparktf", "k": k}
    try:
        clf = _sparktf_classifier(args, k)
        result["note"] = f"numWorkers={k}"
        # The training rows as a user's would be: in files (Parquet), not in the driver.
        path = os.path.join(folder, "train.parquet")
        arrays_to_dataframe(spark, x_train, y_train).write.parquet(path)
        train = spark.read.parquet(path)
        test = arrays_to_dataframe(spark, x_test, y_test)
        model = _timed(lambda: clf.fit(train), result)
        if "error" in result:
            return result
        history = model.history
        if history.get("seconds") is not None:
            threads = (history.get("worker") or {}).get("threads", "?")
            result["note"] += (
                f", training task {history['seconds']:.1f}s (TensorFlow import included), "
                f"intra-op threads {threads}"
            )
        evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
        result["accuracy"] = float(evaluator.evaluate(model.transform(test)))
        return result
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _repeated(run, repeats: int) -> dict:
    """``run()`` ``repeats`` times (each in its own session), stopping at a failure: the last
    run's result with the median wall time, and every run's wall time in ``walls``."""
    walls = []
    for _ in range(repeats):
        result = run()
        walls.append(result["wall"])
        if "error" in result:
            break
    result["walls"] = walls
    result["wall"] = float(np.median(walls))
    return result


def _report(args, results) -> None:
    print(
        f"\n{args.model}, {args.rows} MNIST training rows, {args.epochs} epochs, global batch "
        f"{args.batch}, master {args.master}; test accuracy on the 10,000 test images"
    )
    print(f"  {'runner':<8s} {'k':>2s} {'wall s':>8s}  test accuracy / failure")
    for r in results:
        wall = f"{r['wall']:8.1f}" if "wall" in r else f"{'-':>8s}"
        if "accuracy" in r:
            outcome = f"{r['accuracy']:.4f}"
        elif "error" in r:
            outcome = f"FAILED: {r['error']}"
        else:
            outcome = r.get("skipped", "-")
        notes = [r["note"]] if r.get("note") else []
        if len(r.get("walls", [])) > 1:
            notes.append("median of " + ", ".join(f"{w:.1f}" for w in r["walls"]))
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {r['runner']:<8s} {r['k']:>2d} {wall}  {outcome}{note}")

    def trained(runner, k):
        return next(
            (r for r in results if r["runner"] == runner and r["k"] == k and "accuracy" in r),
            None,
        )

    peer1, ours1, ours2 = trained("peer", 1), trained("sparktf", 1), trained("sparktf", 2)
    print("  ratios:")
    if peer1 and ours1:
        print(
            f"    sparktf k=1 vs peer k=1, wall peer/sparktf: {peer1['wall'] / ours1['wall']:.2f} "
            "(above 1: sparktf faster)"
        )
    else:
        print("    sparktf k=1 vs peer k=1: not available (a run is missing or failed)")
    if ours1 and ours2:
        print(
            f"    sparktf k=2 vs sparktf k=1, wall k2/k1: {ours2['wall'] / ours1['wall']:.2f} "
            f"(speed-up {ours1['wall'] / ours2['wall']:.2f}x)"
        )
    else:
        print("    sparktf k=2 vs sparktf k=1: not available (a run is missing or failed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mnist",
        default=_DEFAULT_MNIST,
        help="folder of the MNIST IDX files (default: %(default)s)",
    )
    parser.add_argument("--rows", type=int, default=30000, help="MNIST training rows used")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128, help="global batch size")
    parser.add_argument(
        "--master",
        default="local-cluster[2,1,3072]",
        help="Spark master (local-cluster[executors,cores,MiB] for separate executors)",
    )
    parser.add_argument(
        "--executor-memory", default="1g", help="spark.executor.memory (default: %(default)s)"
    )
    parser.add_argument("--model", choices=["mlp", "conv"], default="mlp")
    parser.add_argument(
        "--peer-threads",
        type=int,
        default=0,
        help="TF_NUM_INTRAOP_THREADS in the peer's executors (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each measurement; the median is shown"
    )
    parser.add_argument("--skip-peer", action="store_true", help="run sparktf only")
    parser.add_argument("--skip-sparktf", action="store_true", help="run the peer only")
    args = parser.parse_args()
    print(describe())
    _print_load()
    import pyspark

    data = _mnist(args.mnist, args.rows)
    results = []
    if not args.skip_peer:
        try:
            import spark_tensorflow_distributor  # noqa: F401
        except ImportError as exc:
            print(f"\nspark-tensorflow-distributor is not installed ({exc}): the peer is skipped")
        else:
            from importlib.metadata import version

            print(
                f"peer: spark-tensorflow-distributor {version('spark-tensorflow-distributor')}, "
                f"MirroredStrategyRunner(num_slots=k, local_mode=False, use_gpu=False)"
            )
            for k in (1, 2):
                results.append(_repeated(lambda k=k: _run_peer(args, k, data), args.repeats))
    if not args.skip_sparktf:
        from sparktf import TFClassifier

        print(f"sparktf: {TFClassifier().explainParam('numWorkers')}")
        print(f"         {TFClassifier().explainParam('batchSize')}")
        for k in (1, 2):
            results.append(_repeated(lambda k=k: _run_sparktf(args, k, data), args.repeats))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sparktf._quiet import import_tensorflow

    tf = import_tensorflow()
    import keras

    print(f"pyspark {pyspark.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    _report(args, results)
    _print_load()


def _print_load() -> None:
    """The machine's load average: other work on it skews every wall time here."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return
    print(f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
