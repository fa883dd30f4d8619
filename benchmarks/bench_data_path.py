"""Training data at scale: time and peak memory of a 4-model fitMultiple, broadcast vs staged.

For each size (MNIST's 60,000 training images tiled 1x, 4x, 16x, each copy with fresh pixel
noise) and each data path:

* **broadcast**: the rows are collected on the driver through Arrow (one float32 block, sent as
  uint8 when lossless) and broadcast to the training tasks (``maxBroadcastBytes`` raised above
  the data's size);
* **staged**: the rows are written once as Parquet and every task streams them
  (``maxBroadcastBytes=0``);

one Python process (a fresh driver, so peaks are its own) runs ``TFClassifier.fitMultiple`` with
4 settings of a small network for one epoch and prints: wall time, the driver's peak resident
memory (Python), the driver JVM's peak heap (sum over heap pools of their peak use; an upper
bound), the largest peak resident memory of a training task's Python worker, and the test
accuracy of the first model on MNIST's 10,000 test images.

The tiled data is generated once per size as Parquet under ``--work`` (the way large data
reaches Spark in practice: from files, never from the driver) and reused by later runs.

    python benchmarks/bench_data_path.py ../shared/data/mnist                  # 1x, 4x, 16x
    python benchmarks/bench_data_path.py ../shared/data/mnist --scales 1 --modes broadcast

The master defaults to ``local-cluster[2,1,4096]`` (two executors of one core and 4 GiB each).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from _machine import describe

MASTER = "local-cluster[2,1,4096]"


def _heap_peak_mib(spark) -> float:
    jvm = spark.sparkContext._jvm
    total = 0
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType().toString()) == "Heap memory":
            total += pool.getPeakUsage().getUsed()
    return total / 2**20


def _make(spark, mnist: str, scale: int, path: str) -> None:
    """MNIST's training images tiled ``scale`` times with fresh noise, as Parquet at ``path``."""
    from sparktf.datasets import arrays_to_dataframe, read_idx

    images = read_idx(os.path.join(mnist, "train-images-idx3-ubyte.gz")).reshape(60000, -1)
    labels = read_idx(os.path.join(mnist, "train-labels-idx1-ubyte.gz"))
    rng = np.random.default_rng(scale)
    for copy in range(scale):
        noise = rng.integers(-8, 9, size=images.shape) if copy else 0
        tile = np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        df = arrays_to_dataframe(spark, tile, labels).drop("image_id")
        df.write.mode("append" if copy else "overwrite").parquet(path)
    with open(os.path.join(path, "_COMPLETE"), "w") as handle:  # every copy written
        handle.write(str(scale))


def child(args: argparse.Namespace) -> None:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier, get_spark
    from sparktf.datasets import load_mnist
    from sparktf.training._training import peak_rss_mib

    spark = get_spark(master=args.master, app_name="bench-data-path")
    path = os.path.join(args.work, f"mnist-x{args.scale}.parquet")
    if not os.path.exists(os.path.join(path, "_COMPLETE")):
        _make(spark, args.mnist, args.scale, path)
    train = spark.read.parquet(path)
    test = load_mnist(spark, args.mnist, "test")
    limit = 0 if args.mode == "staged" else 1 << 40
    clf = TFClassifier(hiddenLayers=[64], epochs=1, batchSize=128, maxBroadcastBytes=limit)
    maps = [
        {clf.learningRate: rate, clf.hiddenLayers: layers}
        for rate in (1e-3, 3e-3)
        for layers in ([64], [128])
    ]
    start = time.time()
    models = dict(clf.fitMultiple(train, maps))
    seconds = time.time() - start
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        models[0].transform(test)
    )
    print(
        json.dumps(
            {
                "scale": args.scale,
                "mode": args.mode,
                "rows": 60000 * args.scale,
                "float32_mib": 60000 * args.scale * (784 * 4 + 8) / 2**20,
                "seconds": round(seconds, 1),
                "driver_rss_mib": round(peak_rss_mib()),
                "driver_heap_peak_mib": round(_heap_peak_mib(spark)),
                "task_rss_mib": round(
                    max(m.history["worker"].get("peakRssMiB") or 0 for m in models.values())
                ),
                "accuracy": round(accuracy, 4),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist", help="folder with the MNIST IDX files")
    parser.add_argument("--scales", default="1,4,16", help="comma-separated tiling factors")
    parser.add_argument("--modes", default="broadcast,staged", help="broadcast,staged")
    parser.add_argument("--master", default=MASTER)
    parser.add_argument("--work", default="/tmp/sparktf-bench-data", help="generated data")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="broadcast", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {describe()}; master {args.master}")
    print("| size | rows | float32 | path | time | driver RSS | driver heap | task RSS | acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scale in [int(s) for s in args.scales.split(",")]:
        for mode in args.modes.split(","):
            command = [
                sys.executable,
                __file__,
                args.mnist,
                "--child",
                f"--scale={scale}",
                f"--mode={mode}",
                f"--master={args.master}",
                f"--work={args.work}",
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                errors = [  # the Python exception's own line, not a Java stack frame
                    line
                    for line in done.stderr.splitlines()
                    if re.match(r"^[\w.]+(Error|Exception): ", line)
                ]
                reason = (errors or done.stderr.strip().splitlines() or ["?"])[-1][:200]
                print(f"| {scale}x | | | {mode} | failed: {reason} | | | | |", flush=True)
                continue
            r = json.loads(lines[-1])
            print(
                f"| {scale}x | {r['rows']:,} | {r['float32_mib']:,.0f} MiB | {mode} "
                f"| {r['seconds']} s | {r['driver_rss_mib']} MiB | {r['driver_heap_peak_mib']} MiB "
                f"| {r['task_rss_mib']} MiB | {r['accuracy']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
