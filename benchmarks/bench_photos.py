"""Labelling photo-sized JPEGs with an ImageNet-class network: sparktf against the alternatives.

One run, same JPEGs, same network, same two cores (issue 12):

* (a) the single-process program a TensorFlow user writes, no Spark: ``tf.data`` over the files,
  ``tf.io.decode_jpeg`` + ``tf.image.resize`` + scaling in a parallel map (AUTOTUNE), batches,
  prefetch, the network in one ``tf.function``, TensorFlow using every core;
* (b) the recipe of Spark's documentation: a pandas UDF decoding and resizing with Pillow into
  ``array<float>`` rows, then ``pyspark.ml.functions.predict_batch_udf`` calling the Keras model
  (loaded from the ``.keras`` file once per Python worker, ``predict_on_batch``);
* (c) ``TFGraphTransformer`` on the ``spark.read.format("binaryFile")`` DataFrame: from the
  ``.keras`` file (scores and top-5 labels), and from the frozen GraphDef that takes one encoded
  JPEG per call (``DecodeJpeg/contents:0``, decoding in the graph, as the 2016 Inception graph);
  the ``.keras`` side again on the ``path`` column alone (the workers read the files
  themselves, so no bytes leave the JVM); ``sparktf label`` on the same folder, as a command
  started from scratch, from bytes and with ``--by-path``, each with the command's packing of
  small files and with Spark's (``LABEL_RUNS``), is timed once per row and reported on its own;
* (d) the floor: the same ``binaryFile`` bytes through a pandas UDF that returns a constant
  scores array, no decoding, no model: what any pandas-UDF labelling costs here at the least;
  for the side reading by path, the paths alone through the same UDF;
* the network alone, in this process, on the images already decoded and resized, in batches of
  the same size (both cores): (c)'s time above (d) that is not this is decoding, resizing,
  moving data and the transformer's own work.

Data: JPEGs made from scikit-learn's two sample photographs (random crops, flips, rescales,
quality 90; see benchmarks/_photos.py) in two sets per network: ``photo`` (2-12 MP, mixed
orientations) and ``presized`` (shorter side from the network's input size to 8/7 of it).
Networks: ``keras.applications`` MobileNetV2 (224) and InceptionV3 (299) with random weights from
``--seed``, the last layer rescaled so that their scores depend on the image (a random network
is a proxy for a trained one in the agreement figures); built once, no download. Data
and networks are cached under ``--workdir``.

Spark sides run in one ``local[2]`` session (``sparktf.get_spark``); TensorFlow in its Python
workers gets one intra-op and one inter-op thread (``spark.executorEnv``), whichever side starts
it first. Every Spark side reads the files with ``binaryFile``, keeps ``path`` and its outputs and
writes to the ``noop`` sink; each DataFrame is built once and run once before timing. Sides
alternate within each repeat (the order rotates from repeat to repeat); medians are reported.
While a single-process side runs, a tiny Spark job every 15 s keeps the session's idle Python
workers alive (Spark stops those idle for a minute).

Speed ratios are ``time of the other side / time of the sparktf side``: above 1 means sparktf
is faster. Agreement (top-1, top-5 overlap, mean absolute score difference) compares each Spark
side's scores with (a)'s, image by image.

Cold start: in a fresh process, a new session's first transform (TensorFlow imported in the
Python workers and on the driver, the model read, shipped and loaded) minus the same transform
when warm, against the time of ``python -c "import tensorflow"``, measured in the same run.

Scaled JPEG decoding: when ``TFGraphTransformer`` has a Param switching it (one of
``DECODE_PARAMS`` in benchmarks/_photos_spark.py, or ``--decode-param``), ``--decode both`` (the
default) runs the .keras side with it on and off, and reports the agreement of the two.

    python benchmarks/bench_photos.py [--images 192] [--models mobilenetv2,inceptionv3]
                                      [--sets photo,presized] [--repeats 3] [--workdir DIR]
                                      [--json OUT] [--decode both|on|off|default]
                                      [--min-partitions N] [--file-open-cost BYTES]
    python benchmarks/bench_photos.py --quick     # 8 images, MobileNetV2 (alpha 0.35), 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import _photos as photos
from _machine import describe
from _photos_processes import (
    LABEL_RUNS,
    cold_child,
    cold_start,
    floor_child,
    import_tensorflow_seconds,
    label_command,
)
from _photos_report import print_report
from _photos_spark import (
    WORKER_THREADS,
    KeepWorkers,
    collect_scores,
    decode_setting,
    file_name,
    floor_frame,
    graph_stage,
    read_jpegs,
    recipe_frame,
    transformer_stage,
    write_noop,
)
from _timing import timed

SKIPPABLE = ("b", "graph", "path", "label", "cold")


def task_conf(args: argparse.Namespace) -> dict[str, str]:
    """The session's conf: ``--task-cpus`` cores per task, as many TensorFlow threads."""
    if args.task_cpus == 1:
        return dict(WORKER_THREADS)
    threads = str(args.task_cpus)
    return {
        "spark.task.cpus": threads,
        "spark.executorEnv.TF_NUM_INTRAOP_THREADS": threads,
        "spark.executorEnv.TF_NUM_INTEROP_THREADS": "1",
    }


# -- one network x one data set ----------------------------------------------------------------


def measure(
    spark: Any,
    args: argparse.Namespace,
    files: photos.ModelFiles,
    call: Callable[[Any], Any],
    manifest: dict[str, Any],
    decode: tuple[str, dict[str, Any]] | None,
    keep: KeepWorkers,
) -> dict[str, Any]:
    paths = photos.files_of(manifest)
    names = [file_name(p) for p in paths]
    batch = args.batch_size
    images = read_jpegs(spark, manifest["folder"])
    partitions = images.rdd.getNumPartitions()

    stages: dict[str, Any] = {}
    if decode is None:
        stages["c"] = transformer_stage(files, batch)
    else:
        param, values = decode
        for mode in ("on", "off"):
            if args.decode in (mode, "both"):
                stages[f"c_{mode}"] = transformer_stage(files, batch, param, values[mode])
    if "graph" not in args.skip:
        stages["c_graph"] = graph_stage(files, batch)
    planning = {}
    frames: dict[str, Any] = {}
    for key, stage in stages.items():
        planning[key] = timed(lambda stage=stage: stage.transform(images))
        frames[key] = stage.transform(images).select("path", "scores", "topK")
    if "b" not in args.skip:
        frames["b"] = recipe_frame(images, files, batch)
    frames["d"] = floor_frame(images)
    base = stages.get("c", stages.get("c_on"))
    if "path" not in args.skip and base is not None:
        by_path, named = base.copy().setInputCol("path"), images.select("path")
        planning["c_path"] = timed(lambda: by_path.transform(named))
        frames["c_path"] = by_path.transform(named).select("path", "scores", "topK")
        frames["d_path"] = floor_frame(named, "path")

    single: dict[str, Any] = {}

    def side_a() -> None:
        single["a"] = photos.tf_data_scores(paths, call, files.side, files.scaling, batch)

    decoded = photos.decoded_batches(paths, files.side, files.scaling, batch)
    actions: dict[str, Callable[[], Any]] = {
        key: (lambda frame=frame: write_noop(frame)) for key, frame in frames.items()
    }
    actions["a"] = side_a
    actions["model"] = lambda: photos.model_seconds(call, decoded)
    alone = {"a", "model"}

    def time_side(key: str) -> float:
        if key in alone:
            with keep:
                return timed(actions[key])
        return timed(actions[key])

    # warm-up: workers start, import TensorFlow, load and trace the models
    for key in actions if args.warm_up else ():
        time_side(key)
    order = list(actions)
    runs: dict[str, list[float]] = {key: [] for key in order}
    for repeat in range(args.repeats):
        shift = repeat % len(order)
        for key in order[shift:] + order[:shift]:
            runs[key].append(time_side(key))
    medians = {key: statistics.median(values) for key, values in runs.items()}

    agreements: dict[str, dict[str, float]] = {}
    floors = ("d", "d_path")
    scores = {key: collect_scores(frames[key], names) for key in frames if key not in floors}
    for key, matrix in scores.items():
        agreements[f"{key}~a"] = photos.agreement(matrix, single["a"])
    if "c_on" in scores and "c_off" in scores:
        agreements["c_on~c_off"] = photos.agreement(scores["c_on"], scores["c_off"])

    label = {}
    if "label" not in args.skip:
        output = os.path.join(args.workdir, "label-out")
        with keep:
            for name, flags in LABEL_RUNS:
                label[name] = label_command(
                    files, manifest["folder"], batch, output, *flags, master=args.master
                )
    return {
        "model": files.name,
        "set": manifest["spec"]["kind"],
        "data": photos.describe_set(manifest),
        "images": len(paths),
        "partitions": partitions,
        "runs": runs,
        "median": medians,
        "planning": planning,
        "agreement": agreements,
        "label": label,
    }


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 images, MobileNetV2 0.35, once")
    parser.add_argument("--images", type=int, default=None, help="JPEGs per set (default 192)")
    parser.add_argument("--models", default=None, help="mobilenetv2,inceptionv3")
    parser.add_argument("--sets", default="photo,presized", help="photo,presized")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="time each side's first run (a smoke run: the figures then include start-up)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=None, help="MobileNetV2 width (1.0)")
    parser.add_argument("--megapixels", default="2,12", help="photo set: MIN,MAX megapixels")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workdir", default=None, help="cache of data, networks and outputs")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--task-cpus",
        type=int,
        default=1,
        help="spark.task.cpus, and TensorFlow's threads per task, of the benchmark's session",
    )
    parser.add_argument(
        "--min-partitions",
        type=int,
        default=None,
        help="spark.sql.files.minPartitionNum for reading the JPEGs (default: Spark's own packing)",
    )
    parser.add_argument(
        "--file-open-cost",
        type=int,
        default=None,
        metavar="BYTES",
        help="spark.sql.files.openCostInBytes for reading the JPEGs (Spark's default 4 MiB "
        "packs small files into more partitions)",
    )
    parser.add_argument(
        "--decode",
        choices=("both", "on", "off", "default"),
        default="both",
        help="(c) with the scaled-decode Param on, off, both, or left at its default",
    )
    parser.add_argument("--decode-param", default=None, help="the Param's name (default: found)")
    parser.add_argument(
        "--decode-values", default="true,false", help="the Param's ON,OFF values (JSON)"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to leave out: " + ", ".join(SKIPPABLE)
    )
    parser.add_argument("--cold-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.images = args.images or (8 if args.quick else 192)
    args.models = args.models or ("mobilenetv2" if args.quick else "mobilenetv2,inceptionv3")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.alpha = args.alpha or (0.35 if args.quick else 1.0)
    low, high = (float(v) for v in args.megapixels.split(","))
    args.megapixels = (low, high)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    args.workdir = args.workdir or os.path.join(tempfile.gettempdir(), "sparktf-bench-photos")
    for name in args.models:
        if name not in photos.NETWORKS:
            known = ", ".join(photos.NETWORKS)
            parser.error(f"--models: unknown network {name!r} (known: {known})")
    for name in args.sets:
        if name not in ("photo", "presized"):
            parser.error(f"--sets: unknown set {name!r} (known: photo, presized)")
    if args.skip - set(SKIPPABLE):
        parser.error(f"--skip: unknown parts {sorted(args.skip - set(SKIPPABLE))}")
    return args


def run(args: argparse.Namespace, spark: Any = None) -> dict[str, Any]:
    """The whole benchmark; uses ``spark`` when given (and leaves it running), else starts and
    stops a session on ``args.master``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from sparktf import get_spark
    from sparktf._tf import configure_tensorflow

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"machine: {describe()}, load average at start {load:.2f}", flush=True)
    os.makedirs(args.workdir, exist_ok=True)
    configure_tensorflow(threads=cores)
    own = spark is None
    if own:
        spark = get_spark(master=args.master, app_name="bench-photos", conf=task_conf(args))
    master = spark.sparkContext.master
    if args.min_partitions:
        spark.conf.set("spark.sql.files.minPartitionNum", str(args.min_partitions))
    if args.file_open_cost is not None:
        spark.conf.set("spark.sql.files.openCostInBytes", str(args.file_open_cost))
    decode = decode_setting(args)
    print(
        f"session: {master}, batches of {args.batch_size}, {args.repeats} repeat(s), "
        f"workdir {args.workdir}",
        flush=True,
    )
    keep = KeepWorkers(spark)
    rows = []
    cold: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name in args.models:
        files = photos.make_models(name, args.workdir, args.seed, args.alpha)
        models[name] = asdict(files)
        network = keras.models.load_model(files.keras)
        call = photos.model_function(network, files.side)
        manifests = {}
        for kind in args.sets:
            spec = photos.SetSpec(
                kind, args.images, args.seed, megapixels=args.megapixels, side=files.side
            )
            manifests[kind] = manifest = photos.make_set(spec, args.workdir)
            print(f"{name} / {spec.name}: {photos.describe_set(manifest)}", flush=True)
            row = measure(spark, args, files, call, manifest, decode, keep)
            medians = ", ".join(f"{k} {v:.2f}" for k, v in row["median"].items())
            print(f"  {row['partitions']} partitions; medians (s): {medians}", flush=True)
            rows.append(row)
        if "cold" not in args.skip:
            folder = manifests.get("presized", manifests[args.sets[0]])["folder"]
            with keep:
                cold[name] = cold_start(files, folder, args.batch_size, master)
    imports = []
    if "cold" not in args.skip:
        with keep:
            imports = [import_tensorflow_seconds() for _ in range(1 if args.quick else 3)]
    results = {
        "command": " ".join([os.path.basename(__file__), *sys.argv[1:]]),
        "machine": describe(),
        "load_start": load,
        "load_end": os.getloadavg()[0],
        "master": master,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "decode": list(decode) if decode else None,
        "models": models,
        "rows": rows,
        "cold": cold,
        "import_tensorflow": statistics.median(imports) if imports else None,
        "import_tensorflow_runs": imports,
    }
    print_report(results)
    print(f"load average at end {results['load_end']:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    if own:
        spark.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cold_child:
        cold_child(json.loads(args.cold_child))
        return 0
    if args.floor_child:
        floor_child(json.loads(args.floor_child))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
