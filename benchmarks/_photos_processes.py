"""The measurements of benchmarks/bench_photos.py that run in processes of their own: ``sparktf
label`` started from scratch, a cold session's first transform (``--cold-child``), what one Python
worker pays before its first batch (``--floor-child``), and ``python -c "import tensorflow"``.

The two children re-run bench_photos.py with its hidden option and a JSON spec, and print their
figures on a ``RESULT`` line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import _photos as photos
import numpy as np
import pandas as pd
from _photos_spark import WORKER_THREADS, read_jpegs, transformer_stage, write_noop
from _timing import timed

#: The script the children re-run (its ``main`` dispatches ``--cold-child`` and ``--floor-child``).
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_photos.py")

#: The ``sparktf label`` runs: from bytes and by path, each with the command's packing of small
#: files into tasks and with Spark's default one (``openCostInBytes`` 4 MiB, as the command
#: packed them before).
_SPARK_PACKING = ("--conf", "spark.sql.files.openCostInBytes=4194304")
LABEL_RUNS = (
    ("from bytes", ()),
    ("--by-path", ("--by-path",)),
    ("from bytes, Spark's packing", _SPARK_PACKING),
    ("--by-path, Spark's packing", ("--by-path", *_SPARK_PACKING)),
)


def label_command(
    files: photos.ModelFiles, folder: str, batch: int, output: str, *flags: str, master: str
) -> dict:
    """``sparktf label`` on ``folder`` (with ``flags``) in a process of its own, on ``master``
    (the benchmark's ``--master``): wall time including the start-up (JVM, session,
    TensorFlow), and the labelling time it reports."""
    command = [
        sys.executable, "-m", "sparktf", "label", folder, "--model", files.keras,
        "--labels", files.labels, "--image-scaling", files.scaling, "--batch-size", str(batch),
        "--master", master, "--output", output, "--overwrite", "--show", "0", *flags,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sparktf label failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    match = re.search(r"Labelled and wrote \d+ rows in ([0-9.]+)s", done.stderr + done.stdout)
    return {"wall": wall, "labelling": float(match.group(1)) if match else None}


def cold_child(spec: dict[str, Any]) -> None:
    """In a fresh process: a new session's first transform, then the same transform warm. With
    ``spark_first``, a trivial pandas UDF runs first: what any Spark program's first Python job
    pays (the JVM's first job, starting the Python workers) is then outside the cold time."""
    from sparktf import get_spark

    start = time.perf_counter()
    spark = get_spark(master=spec["master"], app_name="bench-photos-cold", conf=WORKER_THREADS)
    session = time.perf_counter() - start
    first_job = None

    # Defined here, not at module level: Spark's Python workers cannot import this module, so
    # the function must be pickled by value (as functions of a script run as __main__ are).
    def no_rows(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for _ in frames:
            pass
        yield pd.DataFrame({"x": [0]})

    if spec.get("spark_first"):
        trivial = spark.range(0, 2, 1, 2).mapInPandas(no_rows, "x long")
        first_job = timed(trivial.collect)
    files = photos.ModelFiles(**spec["files"])
    images = read_jpegs(spark, spec["folder"])
    stage = transformer_stage(files, spec["batch"])

    planned: list[float] = []

    def once() -> None:
        start = time.perf_counter()
        frame = stage.transform(images).select("path", "scores", "topK")
        planned.append(time.perf_counter() - start)
        write_noop(frame)

    cold = timed(once)
    warm = min(timed(once) for _ in range(2))
    spark.stop()
    result = {
        "session": session,
        "cold": cold,
        "warm": warm,
        "cold_plan": planned[0],
        "warm_plan": min(planned[1:]),
        "tensorflow_in_driver": "tensorflow" in sys.modules,
        "spark_first_job": first_job,
    }
    print("RESULT " + json.dumps(result), flush=True)


def floor_child(spec: dict[str, Any]) -> None:
    """In a fresh process, what one Python worker cannot avoid before its first batch: import
    TensorFlow, load the model, and its first call (tracing included) on one batch."""
    start = time.perf_counter()
    from sparktf._tf import configure_tensorflow
    from sparktf.inference._sources import load_model

    configure_tensorflow(threads=1)
    imported = time.perf_counter()
    model = load_model({"format": "keras", "path": spec["keras"], "key": "floor"}, None)
    loaded = time.perf_counter()
    runner = model.runner([model.inputs[0].name], [model.outputs[0].name])
    batch = np.zeros((spec["batch"], spec["side"], spec["side"], 3), np.float32)
    runner([batch])
    first = time.perf_counter()
    runner([batch])
    again = time.perf_counter()
    result = {
        "import": imported - start,
        "load": loaded - imported,
        "first_call": first - loaded,
        "next_call": again - first,
    }
    print("RESULT " + json.dumps(result), flush=True)


def _child(option: str, spec: dict[str, Any]) -> dict:
    done = subprocess.run(
        [sys.executable, SCRIPT, option, json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{option} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def cold_start(files: photos.ModelFiles, folder: str, batch: int, master: str) -> dict:
    spec = {"files": asdict(files), "folder": folder, "batch": batch, "master": master}
    result = _child("--cold-child", spec)
    result["after_spark_first"] = _child("--cold-child", {**spec, "spark_first": True})
    floor = {"keras": files.keras, "batch": batch, "side": files.side}
    result["worker_floor"] = _child("--floor-child", floor)
    return result


def import_tensorflow_seconds() -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return timed(
        lambda: subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, env=env)
    )
