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

The workload (data, grid, the TFClassifier) is in _tuning.py, the baselines (a) and (a') in
_tuning_baselines.py, the fitMultiple side (b) and (c) in _tuning_spark.py, the printed report in
_tuning_report.py. docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from _machine import describe
from _tuning import digits_data, grid_settings, load_average, setting_label
from _tuning_baselines import run_keras_loop, run_train_one_loop, warm_up_keras
from _tuning_report import print_cluster, print_report, print_scaling
from _tuning_spark import run_fit_multiple, wait_for_executors

MASTERS_C = ("local-cluster[1,1,2048]", "local-cluster[2,1,2048]")


def _child(args) -> int:
    """Run (c) for one master in this process; print the result as one JSON line."""
    from sparktf.session import get_spark

    executors = int(args.child.split("[", 1)[1].split(",", 1)[0])
    start = time.perf_counter()
    spark = get_spark(master=args.child, app_name="bench-tuning-scaling")
    registered = wait_for_executors(spark, executors)
    startup = time.perf_counter() - start
    x, y = digits_data(args.rows, args.seed)
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
    print(f"load average (1/5/15 min) at start: {load_average()}")
    grid = grid_settings(args)
    print(
        f"workload: {args.rows} rows x 64 features (digits + noise), 10 classes; MLP "
        f"{'hidden layers per setting' if args.small_trials else args.hidden} + dropout "
        f"{args.dropout}, batch size {args.batch_size}, "
        f"{args.epochs} epoch(s); grid of {len(grid)} settings: "
        + "; ".join(setting_label(s) for s in grid)
    )
    if args.quick:
        print("(--quick: fixed overheads dominate at this size; the ratios are not meaningful)")
    x, y = digits_data(args.rows, args.seed)

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

    print_report(args, cores, grid, warm_a, rounds_a, rounds_a2, rounds_b)

    if not args.skip_scaling:
        print("\n(c) scaling from 1 to 2 executors (1 core each), each in its own Python process")
        times = []
        for master in MASTERS_C:
            c = run_cluster(master, child_argv)
            times.append(c["seconds"])
            print_cluster(master, c)
        print_scaling(*times)

    print(f"\nload average (1/5/15 min) at end: {load_average()}")
    print(f"total wall time of this benchmark: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
