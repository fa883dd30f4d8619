"""Distributed hyperparameter tuning: a grid through TFClassifier.fitMultiple against a Keras loop.

One run, same data, same grid, same epochs, same architecture, prints:

* (a) the baseline: the grid trained as a plain sequential loop of Keras ``fit`` calls in one
  Python process, TensorFlow using every core (what a user without sparktf writes);
* (b) the same grid through ``TFClassifier.fitMultiple`` on ``local[N]`` (N = cores): one Spark
  job, one task per param map, one TensorFlow thread per task (``spark.task.cpus=1``);
* the speedup (a)/(b);
* (c) scaling from one to two executors: the same grid on ``local-cluster[1,1,2048]`` and on
  ``local-cluster[2,1,2048]`` (each in its own Python process, since a driver holds one
  SparkContext), and the efficiency t1 / (2 * t2).

The data are scikit-learn's digits (8x8 images, 10 classes) repeated with Gaussian pixel noise to
``--rows`` rows; the model is the built-in TFClassifier family, a multilayer perceptron
(standardization, dense layers with ReLU and dropout, 10 logits) trained with batch size 32, the
default of both Keras's ``fit`` and TFClassifier.
Each side warms up first (TensorFlow imported, Python workers started, a first model traced);
warm-up times are printed separately and not counted in (a), (b) or (c). Other processes on the
machine disturb timings, so (a) and (b) run ``--repeats`` rounds, interleaved, and the best round
of each side counts (every round is printed); (c) likewise within each Python process.

    python benchmarks/bench_tuning.py            # the full run (about 6-10 minutes on 2 cores)
    python benchmarks/bench_tuning.py --quick    # a smoke run (under 2 minutes); ratios mean little

docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
from _machine import describe

MASTERS_C = ("local-cluster[1,1,2048]", "local-cluster[2,1,2048]")
SMALL_TRIAL_UNITS = (64, 256)


# -- machine and workload ---------------------------------------------------------------------


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits repeated to ``rows`` rows, each copy with fresh Gaussian pixel noise."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    reps = -(-rows // len(digits.target))
    x = np.tile(digits.data.astype(np.float32), (reps, 1))[:rows]
    y = np.tile(digits.target.astype(np.int32), reps)[:rows]
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, 1.0, x.shape).astype(np.float32)
    return x, y


def _grid(args) -> list[dict[str, Any]]:
    """The settings of the grid.

    By default settings of equal cost (same layers and batch size), so no task waits on a slower
    one; with ``--small-trials`` the grid of many small models: hidden units x learning rate.
    """
    if args.small_trials:
        return [
            {"learningRate": lr, "optimizer": "adam", "hiddenLayers": [units]}
            for units in SMALL_TRIAL_UNITS
            for lr in args.learning_rates
        ]
    return [
        {"learningRate": lr, "optimizer": opt}
        for opt in ("adam", "rmsprop")
        for lr in args.learning_rates
    ]


def _hidden(setting: dict[str, Any], args) -> list[int]:
    return list(setting.get("hiddenLayers", args.hidden))


def _label(setting: dict[str, Any]) -> str:
    label = f"optimizer={setting['optimizer']}, learningRate={setting['learningRate']:g}"
    if "hiddenLayers" in setting:
        label = f"hiddenLayers={setting['hiddenLayers']}, " + label
    return label


# -- (a) the plain Keras loop -----------------------------------------------------------------


def _keras_model(x: np.ndarray, hidden: list[int], dropout: float, classes: int):
    """The MLP a user would write by hand; same layers as TFClassifier's built-in family."""
    import keras

    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    layers: list[Any] = [keras.Input(shape=(x.shape[1],)), norm]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(classes))
    return keras.Sequential(layers)


def _keras_fit(x, y, setting: dict[str, Any], args, epochs: int) -> dict[str, Any]:
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    model = _keras_model(x, _hidden(setting, args), args.dropout, 10)
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    model.compile(
        optimizer=optimizers[setting["optimizer"]](learning_rate=setting["learningRate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=args.batch_size, epochs=epochs, shuffle=True, verbose=0)
    return {
        "seconds": time.perf_counter() - start,
        "loss": float(history.history["loss"][-1]),
        "accuracy": float(history.history["accuracy"][-1]),
        "params": int(model.count_params()),
    }


def _same_architecture(x, args) -> tuple[int, int]:
    """Parameter counts of the hand-written model and of sparktf's built-in one."""
    from sparktf._classifier_params import training_spec
    from sparktf.training._training import build_model

    spec = training_spec(hiddenLayers=list(args.hidden), dropout=args.dropout)
    ours, _ = build_model(spec, x.shape[1], 10, x[:256])
    return _keras_model(x[:256], args.hidden, args.dropout, 10).count_params(), ours.count_params()


def warm_up_keras(x, y, args) -> dict[str, Any]:
    start = time.perf_counter()
    import tensorflow  # noqa: F401  (counted in the warm-up)

    _keras_fit(x[:1024], y[:1024], _grid(args)[0], args, epochs=1)  # traces a first model
    return {"warmup": time.perf_counter() - start, "params": _same_architecture(x, args)}


def run_keras_loop(x, y, args) -> dict[str, Any]:
    load_before = _load()
    start = time.perf_counter()
    fits = [_keras_fit(x, y, setting, args, args.epochs) for setting in _grid(args)]
    total = time.perf_counter() - start
    return {"seconds": total, "fits": fits, "load": (load_before, _load())}


# -- (a'): sparktf's own training function in the same loop ----------------------------------


def run_train_one_loop(x, y, args) -> dict[str, Any]:
    """The grid through ``sparktf.training._training.train_one`` in a driver loop: the task's work
    without Spark, so (a')/(b) is what task parallelism alone gains."""
    from sparktf.training._training import train_one

    clf = _classifier(args, args.epochs)
    from sparktf.training._plans import TrainingData

    data = TrainingData(num_features=x.shape[1], num_classes=10, x=x, y=y)
    load_before = _load()
    start = time.perf_counter()
    fits = []
    for index, param_map in enumerate(_param_maps(clf, args)):
        result = train_one(index, clf.copy(param_map)._training_spec(), data)
        if result["error"]:
            raise RuntimeError(f"setting {index} failed: {result['error']}")
        fits.append({"seconds": result["seconds"], "loss": result["history"]["loss"][-1]})
    total = time.perf_counter() - start
    return {"seconds": total, "fits": fits, "load": (load_before, _load())}


# -- (b) and (c): TFClassifier.fitMultiple ----------------------------------------------------


def _classifier(args, epochs: int):
    from sparktf import TFClassifier

    return TFClassifier(
        hiddenLayers=list(args.hidden),
        dropout=args.dropout,
        batchSize=args.batch_size,
        epochs=epochs,
        seed=args.seed,
    )


def _param_maps(clf, args) -> list[dict]:
    return [
        {
            clf.optimizer: s["optimizer"],
            clf.learningRate: s["learningRate"],
            clf.hiddenLayers: _hidden(s, args),
        }
        for s in _grid(args)
    ]


def _frame(spark, x, y):
    import pandas as pd

    pdf = pd.DataFrame({"features": list(x), "label": y.astype(np.int64)})
    df = spark.createDataFrame(pdf).repartition(os.cpu_count() or 1).cache()
    df.count()
    return df


def _wait_for_executors(spark, wanted: int, timeout: float = 120.0) -> int:
    """Wait until ``wanted`` executors have registered (local-cluster starts them lazily)."""
    sc = spark.sparkContext
    deadline = time.time() + timeout
    while True:
        count = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        if count >= wanted or time.time() > deadline:
            return count
        time.sleep(0.5)


def run_fit_multiple(spark, x, y, args, slots: int) -> dict[str, Any]:
    """Warm every task slot up, then time one fitMultiple call over the grid."""
    warm_start = time.perf_counter()
    small = _frame(spark, x[: 512 * slots], y[: 512 * slots])
    warm_clf = _classifier(args, epochs=1)
    warm_maps = [{warm_clf.learningRate: 1e-3 * (i + 1)} for i in range(slots)]
    warm_models = [m for _, m in warm_clf.fitMultiple(small, warm_maps)]
    warm = time.perf_counter() - warm_start
    small.unpersist()
    df = _frame(spark, x, y)

    clf = _classifier(args, args.epochs)
    maps = _param_maps(clf, args)
    load_before = _load()
    start = time.perf_counter()
    models = dict(clf.fitMultiple(df, maps))
    total = time.perf_counter() - start
    df.unpersist()
    fits = []
    for index in range(len(maps)):
        model = models[index]
        if model.trainingFailure:
            raise RuntimeError(f"trial {index} failed: {model.trainingFailure}")
        history = model.history
        fits.append(
            {
                "seconds": history["seconds"],
                "loss": history["epochs"]["loss"][-1],
                "accuracy": history["epochs"]["accuracy"][-1],
                "pid": history["worker"]["pid"],
                "jvmPid": history["worker"]["jvmPid"],
                "threads": history["worker"].get("threads"),
            }
        )
    return {
        "warmup": warm,
        "warmupWorkers": len({m.history["worker"]["pid"] for m in warm_models}),
        "seconds": total,
        "fits": fits,
        "load": (load_before, _load()),
    }


def _child(args) -> int:
    """Run (c) for one master in this process; print the result as one JSON line."""
    from sparktf.session import get_spark

    executors = int(args.child.split("[", 1)[1].split(",", 1)[0])
    start = time.perf_counter()
    spark = get_spark(master=args.child, app_name="bench-tuning-scaling")
    registered = _wait_for_executors(spark, executors)
    startup = time.perf_counter() - start
    x, y = _data(args.rows, args.seed)
    try:
        rounds = [run_fit_multiple(spark, x, y, args, slots=executors) for _ in range(args.repeats)]
    finally:
        spark.stop()
    result = min(rounds, key=lambda r: r["seconds"])
    result.update(
        startup=startup,
        executors=registered,
        warmup=rounds[0]["warmup"],
        rounds=[r["seconds"] for r in rounds],
    )
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_cluster(master: str, argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), *argv, "--child", master]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"the {master} run failed (exit code {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


# -- report -----------------------------------------------------------------------------------


def _spread(fits: list[dict[str, Any]]) -> str:
    seconds = [f["seconds"] for f in fits]
    return f"{np.mean(seconds):.1f} s per model (min {min(seconds):.1f}, max {max(seconds):.1f})"


def _rounds_of_tasks(fits: list[dict[str, Any]], slots: int) -> float:
    """The time ``slots`` task slots need for these task times, largest first (a lower bound
    on the job's time without fixed costs)."""
    load = [0.0] * slots
    for seconds in sorted((f["seconds"] for f in fits), reverse=True):
        load[load.index(min(load))] += seconds
    return max(load)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (< 2 minutes)")
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--seed", type=int, default=20161112)
    parser.add_argument(
        "--repeats", type=int, default=2, help="rounds per measurement; the best one counts"
    )
    parser.add_argument("--skip-scaling", action="store_true", help="skip (c)")
    parser.add_argument(
        "--small-trials",
        action="store_true",
        help="many small trials: the 1,797 digits, hidden units {64, 256} x learning rate, "
        "20 epochs, no dropout, 3 rounds, adds (a'), skips (c)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small_trials:
        args.rows, args.epochs, args.dropout, args.skip_scaling = 1797, 20, 0.0, True
        args.repeats = max(args.repeats, 3)
    if args.quick:
        args.rows, args.epochs, args.repeats = min(args.rows, 2000), 1, 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child:
        return _child(args)
    child_argv = [a for a in argv if a != "--quick"]
    child_argv += ["--rows", str(args.rows), "--epochs", str(args.epochs)]
    child_argv += ["--repeats", str(args.repeats)]

    cores = os.cpu_count() or 1
    began = time.perf_counter()
    print(f"machine: {describe()}")
    print(f"load average (1/5/15 min) at start: {_load()}")
    grid = _grid(args)
    print(
        f"workload: {args.rows} rows x 64 features (digits + noise), 10 classes; MLP "
        f"{'hidden layers per setting' if args.small_trials else args.hidden} + dropout "
        f"{args.dropout}, batch size {args.batch_size}, "
        f"{args.epochs} epoch(s); grid of {len(grid)} settings: "
        + "; ".join(_label(s) for s in grid)
    )
    if args.quick:
        print("(--quick: fixed overheads dominate at this size; the ratios are not meaningful)")
    x, y = _data(args.rows, args.seed)

    from sparktf.session import get_spark

    spark = get_spark(master=f"local[{cores}]", app_name="bench-tuning")
    warm_a = warm_up_keras(x, y, args)
    rounds_a, rounds_a2, rounds_b = [], [], []
    for _ in range(args.repeats):  # interleaved, so all sides see the same disturbances
        rounds_a.append(run_keras_loop(x, y, args))
        if args.small_trials:
            rounds_a2.append(run_train_one_loop(x, y, args))
        rounds_b.append(run_fit_multiple(spark, x, y, args, slots=cores))
    spark.stop()
    a = min(rounds_a, key=lambda r: r["seconds"])
    b = min(rounds_b, key=lambda r: r["seconds"])

    print(f"\n(a) sequential Keras loop on the driver, TensorFlow on all {cores} cores")
    print(
        "    warm-up (import TensorFlow, trace a first model; not counted): "
        f"{warm_a['warmup']:.1f} s"
    )
    print(
        f"    same architecture as TFClassifier's: {warm_a['params'][0]} parameters "
        f"(hand-written) vs {warm_a['params'][1]} (sparktf.training._training.build_model)"
    )
    for i, r in enumerate(rounds_a, 1):
        print(
            f"    round {i}: grid {r['seconds']:.1f} s  ({_spread(r['fits'])})  "
            f"load {r['load'][0]} -> {r['load'][1]}"
        )

    if rounds_a2:
        print(
            f"\n(a') sparktf's training function (sparktf.training._training.train_one) in the "
            f"same loop on the driver, TensorFlow on all {cores} cores: the tasks' work without "
            "Spark"
        )
        for i, r in enumerate(rounds_a2, 1):
            print(
                f"    round {i}: grid {r['seconds']:.1f} s  ({_spread(r['fits'])})  "
                f"load {r['load'][0]} -> {r['load'][1]}"
            )

    print(f"\n(b) TFClassifier.fitMultiple on local[{cores}]: one Spark job, one task per setting")
    print(
        f"    warm-up before each round (Python workers started, TensorFlow imported in each of "
        f"{rounds_b[0]['warmupWorkers']}; not counted): "
        + ", ".join(f"{r['warmup']:.1f} s" for r in rounds_b)
    )
    for i, r in enumerate(rounds_b, 1):
        workers = len({f["pid"] for f in r["fits"]})
        threads = sorted({f["threads"] for f in r["fits"]})
        print(
            f"    round {i}: grid {r['seconds']:.1f} s  ({_spread(r['fits'])}; {workers} Python "
            f"workers, TensorFlow threads per task: {threads})  "
            f"load {r['load'][0]} -> {r['load'][1]}"
        )
    print("    the grid time includes the Arrow collect, the broadcast, serializing each model")

    speedup = a["seconds"] / b["seconds"]
    per_round = ", ".join(
        f"{ra['seconds'] / rb['seconds']:.2f}x" for ra, rb in zip(rounds_a, rounds_b, strict=True)
    )
    print(
        f"\nspeedup (a)/(b), best round of each: {a['seconds']:.1f} / {b['seconds']:.1f} = "
        f"{speedup:.2f}x against the sequential Keras loop (target 1.7x on 2 cores; limit "
        f"{cores}x on {cores} cores when both sides run the same training code); "
        f"round by round: {per_round}"
    )
    if rounds_a2:
        a2 = min(rounds_a2, key=lambda r: r["seconds"])
        print(
            f"speedup (a')/(b): {a2['seconds']:.1f} / {b['seconds']:.1f} = "
            f"{a2['seconds'] / b['seconds']:.2f}x (task parallelism alone); "
            f"(a)/(a') = {a['seconds'] / a2['seconds']:.2f}x (sparktf's training function "
            "against the plain Keras fit, both in one process)"
        )
        overhead = float(np.mean([f["seconds"] for f in b["fits"]])) - float(
            np.mean([f["seconds"] for f in a2["fits"]])
        )
        print(
            f"per-trial overhead: a task's trial took {overhead:+.2f} s against the same "
            f"training function on the driver; the job's fixed cost (grid time minus "
            f"{len(grid) // cores} rounds of tasks): "
            f"{b['seconds'] - _rounds_of_tasks(b['fits'], cores):.2f} s"
        )
    one_thread = float(np.mean([f["seconds"] for f in b["fits"]]))
    all_threads = float(np.mean([f["seconds"] for f in a["fits"]]))
    gain = one_thread / all_threads
    print(
        f"one model alone: {all_threads:.1f} s with {cores} TensorFlow threads (a), "
        f"{one_thread:.1f} s with 1 thread inside a task (b); time with 1 thread / time with "
        f"{cores} = {gain:.2f}"
    )
    if gain < 1.3:
        print(
            f"reading: at batch size {args.batch_size} one training step of this MLP is too "
            f"small for TensorFlow to spread over {cores} threads, so one model cannot keep "
            f"{cores} cores busy; {cores} models at once, one thread each, can. That is why a "
            "grid gains from task parallelism here. Large batches or convolutions, which one "
            "model already spreads over all cores, gain less on a single machine."
        )
    else:
        print(
            "reading: one model already spreads over several threads here (or other processes "
            "disturbed the timing), so task parallelism gains less than the number of cores."
        )
    print("\nper setting: (a) seconds, final training loss | (b) task seconds, final loss")
    for setting, fa, fb in zip(grid, a["fits"], b["fits"], strict=True):
        print(
            f"    {_label(setting):40s} {fa['seconds']:6.1f} s  loss {fa['loss']:.4f} | "
            f"{fb['seconds']:6.1f} s  loss {fb['loss']:.4f}"
        )

    if not args.skip_scaling:
        print("\n(c) scaling from 1 to 2 executors (1 core each), each in its own Python process")
        times = []
        for master in MASTERS_C:
            c = run_cluster(master, child_argv)
            times.append(c["seconds"])
            jvms = len({f["jvmPid"] for f in c["fits"]})
            print(
                f"    {master}: grid {c['seconds']:.1f} s  ({_spread(c['fits'])}; "
                f"{c['executors']} executor(s) registered, tasks ran in {jvms} executor JVM(s); "
                f"start-up {c['startup']:.1f} s and warm-up {c['warmup']:.1f} s not counted; "
                f"rounds: {', '.join(f'{t:.1f} s' for t in c['rounds'])}, best shown)  "
                f"load {c['load'][0]} -> {c['load'][1]}"
            )
        t1, t2 = times
        print(
            f"    speedup t1/t2 = {t1 / t2:.2f}x; efficiency t1 / (2 * t2) = "
            f"{t1 / (2 * t2):.2f} (1.00 is perfect; baseline: the 1-executor run)"
        )

    print(f"\nload average (1/5/15 min) at end: {_load()}")
    print(f"total wall time of this benchmark: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
