"""Soak: 20 transforms in a row, each with a different small model, in one Spark session.

Each iteration builds a new small Keras model (8 -> 32 -> 3), alternately shipped as a Keras
file and as a SavedModel exported from it, applies it with TFGraphTransformer to ~20,000 rows
on ``local[2]`` and prints, after the transform, the resident memory (VmRSS) of every Python
worker (probed by a tiny mapInPandas job returning os.getpid() and /proc/self/status) and the
number of sparktf temporary folders (``sparktf-savedmodel-*``) of this session's processes (the
driver and the workers, by the PID in the folder's name) and of all processes.
With a bounded model cache (4 models per process by default) worker memory levels off and the
folder count stays at most the cache size per process.

    python benchmarks/bench_soak.py                   # 20 models, 20,000 rows
    python benchmarks/bench_soak.py --models 8 --rows 5000
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

import numpy as np
from _machine import describe


def worker_rss(spark) -> dict[int, float]:
    """{pid: VmRSS in MiB} of the Python workers that run SQL UDFs."""

    def probe(frames):
        import pandas as pd

        for _ in frames:
            with open("/proc/self/status") as handle:
                kib = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS"))
            yield pd.DataFrame({"pid": [os.getpid()], "rss": [kib / 1024]})

    frame = spark.range(16).repartition(16).mapInPandas(probe, "pid long, rss double")
    return {r["pid"]: r["rss"] for r in frame.collect()}


def temp_folders(pids=None) -> int:
    """sparktf's SavedModel folders in the temporary directory: all of them, or those of the
    processes ``pids`` (the folder names carry their process's PID)."""
    names = [
        os.path.basename(p)
        for p in glob.glob(os.path.join(tempfile.gettempdir(), "sparktf-savedmodel-*"))
    ]
    if pids is None:
        return len(names)
    return sum(1 for n in names if n.split("-")[2] in {str(p) for p in pids})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from sparktf import TFGraphTransformer
    from sparktf._tf import configure_tensorflow
    from sparktf.session import get_spark

    configure_tensorflow()
    import keras

    spark = get_spark(master=args.master, app_name="sparktf-soak")
    data = np.random.RandomState(0).rand(args.rows, 8).astype(np.float32)
    df = spark.createDataFrame(
        [(i, r.tolist()) for i, r in enumerate(data)], "id long, f array<float>"
    )
    df = df.repartition(4).cache()
    df.count()
    work = tempfile.mkdtemp(prefix="soak-models-")
    print(f"machine: {describe()}")
    print(
        f"master {args.master}, {args.models} models, {args.rows} rows, "
        f"temp dir {tempfile.gettempdir()}"
    )
    print(f"sparktf folders before: {temp_folders()}")
    print("iter  format      seconds  workers  max worker RSS MiB  per-worker RSS MiB  ours  all")
    for i in range(args.models):
        keras.utils.set_random_seed(i)
        model = keras.Sequential(
            [keras.Input((8,), name="f"), keras.layers.Dense(32, activation="relu"),
             keras.layers.Dense(3, name="y")]
        )  # fmt: skip
        if i % 2:
            path = os.path.join(work, f"model-{i}")
            model.export(path, verbose=False)
            stage = TFGraphTransformer.fromSavedModel(path, inputCol="f", outputCol="y")
            kind = "savedmodel"
        else:
            stage = TFGraphTransformer.fromKeras(model, inputCol="f", outputCol="y")
            kind = "keras"
        start = time.perf_counter()
        total = stage.transform(df).selectExpr("sum(y[0])").first()[0]
        seconds = time.perf_counter() - start
        assert np.isfinite(total)
        rss = worker_rss(spark)
        listed = " ".join(f"{v:.0f}" for _, v in sorted(rss.items()))
        ours = temp_folders({os.getpid(), *rss})  # the driver's and the workers' folders
        print(
            f"{i + 1:4d}  {kind:10s}  {seconds:7.2f}  {len(rss):7d}  {max(rss.values()):18.0f}"
            f"  {listed:>18s}  {ours:4d}  {temp_folders():3d}"
        )
    spark.stop()
    time.sleep(2)
    print(f"sparktf folders after the session stopped: {temp_folders()}")


if __name__ == "__main__":
    main()
