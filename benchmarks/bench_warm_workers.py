"""Multi-worker fits whose training processes are forked from a warm process (the default)
against fresh processes that import TensorFlow every fit (``SPARKTF_WARM_WORKERS=0``).

    python benchmarks/bench_warm_workers.py --fits 4

Each side runs in a process of its own (its own Spark session, so the Python workers see the
setting): ``--fits`` two-worker fits in a row of a small network on the bundled digits
(``hiddenLayers=[32]``, 3 epochs) on ``local[2]``, with a transform between fits, so the Python
workers' own TensorFlow runtime is started as in a real pipeline. Prints each fit's wall time and
each worker's start (process start to training) and TensorFlow import, then the ratio of the
later fits' median wall time, warm against the fresh baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import describe


def fits(count: int, master: str) -> list[dict]:
    """In this process: ``count`` two-worker fits; each one's figures."""
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sparktf import TFClassifier
    from sparktf.datasets import load_digits
    from sparktf.session import get_spark

    spark = get_spark(master=master, app_name="sparktf-bench-warm-workers")
    train = load_digits(spark, num_partitions=2).cache()
    rows = []
    for _ in range(count):
        start = time.time()
        model = TFClassifier(numWorkers=2, hiddenLayers=[32], epochs=3, batchSize=64).fit(train)
        workers = model.history["worker"]["workers"]
        timing = [w["timing"] for w in workers]
        rows.append(
            {
                "fit": time.time() - start,
                "start": [t["processStart"] + t["setup"] for t in timing],
                "import": [t["importTensorFlow"] for t in timing],
                "warm": [t["warm"] for t in timing],
            }
        )
        model.transform(train).count()
    spark.stop()
    return rows


def side(warm: bool, count: int, master: str) -> list[dict]:
    """One side in a process of its own."""
    env = {**os.environ, "SPARKTF_WARM_WORKERS": "1" if warm else "0"}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    argv = [sys.executable, __file__, "--side", "--fits", str(count), "--master", master]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def report(name: str, rows: list[dict]) -> None:
    for i, row in enumerate(rows):
        starts = " / ".join(f"{s:.2f}" for s in row["start"])
        imports = " / ".join(f"{s:.2f}" for s in row["import"])
        print(
            f"{name:6} fit {i + 1}: {row['fit']:6.2f} s  worker start {starts} s  "
            f"TensorFlow import {imports} s  warm {row['warm']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=4, help="fits per side (>= 2)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print("RESULT " + json.dumps(fits(args.fits, args.master)), flush=True)
        return
    if args.fits < 2:
        parser.error("--fits must be at least 2: the later fits are what is compared")
    print(describe())
    fresh = side(False, args.fits, args.master)
    warm = side(True, args.fits, args.master)
    report("fresh", fresh)
    report("warm", warm)
    base = statistics.median(r["fit"] for r in fresh[1:])
    later = statistics.median(r["fit"] for r in warm[1:])
    print(
        f"later fits, median wall: fresh (baseline) {base:.2f} s, warm {later:.2f} s: "
        f"warm / fresh {later / base:.2f}x"
    )


if __name__ == "__main__":
    main()
