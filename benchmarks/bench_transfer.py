"""Transfer learning on images with TFClassifier, on real MNIST digits written as JPEG photos.

A base network is pretrained on every MNIST training image of the digits 0-4 (plain Keras, saved
as ``.keras``; see ``_transfer.py``). The new task is the digits 5-9 as 96x96 RGB JPEG files.
Three measurements, each against the baseline it names:

* **transfer pays**: ``TFClassifier(baseModel=<the base>)`` fine-tuned on ``--per-class``
  labelled images of each of 5-9 (the head alone for half the epochs, then every layer at a
  tenth of the learning rate), against the same architecture from random weights
  (``baseModel=<a fresh copy>``, every layer trained) on the same images with the same number
  of epochs; test accuracy on every MNIST test image of 5-9 (4,861 JPEG files), scored by
  ``transform``, for each budget of ``--budgets`` and each learning rate of ``--rates``.
* **input pipeline**: images per second of the fine-tune's training from JPEG files in one
  Spark task, against a plain Keras ``fit`` over a ``tf.data`` pipeline reading the same files
  in one process with the same TensorFlow threads (ratio; target at least 0.9x). Also for a
  MobileNetV2-shaped base (``keras.applications.MobileNetV2(weights=None)``, saved to a file)
  at 160x160 with ``--mobilenet``.
* **search**: a ``HalvingCrossValidator`` over learning rate, trainable layers and dropout of
  the fine-tune, with ``tuning_report`` and ``plot_sensitivity`` (``--search``).

    python benchmarks/bench_transfer.py ../shared/data/mnist [--per-class 50]
        [--budgets 2 4 8 16] [--rates 0.001 0.01] [--speed-images 5000] [--repeats 3] [--mobilenet]
        [--search] [--epochs 10] [--skip-transfer] [--work /tmp/sparktf-transfer]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import _transfer as tr
from _machine import describe


def _spark():
    from sparktf import get_spark

    return get_spark(master="local[2]")


def _accuracy(model, test) -> float:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    scored = model.transform(test)
    return MulticlassClassificationEvaluator(metricName="accuracy").evaluate(scored)


def _classifier(base: str, epochs: int, **params):
    from sparktf import TFClassifier

    settings = dict(
        featuresCol="content",
        baseModel=base,
        imageScaling="unit",
        hiddenLayers=[],
        dropout=0.0,
        epochs=epochs,
        batchSize=32,
        seed=7,
    )
    settings.update(params)
    return TFClassifier(**settings)


def _sides(base: str, scratch: str, epochs: int, rate: float) -> dict:
    """The two networks of one budget: the base's head for the first half of the epochs
    (frozen base, ``rate``), then every layer at ``rate / 10``; and the same architecture from
    random weights, every layer training all epochs at ``rate``."""
    head = max(1, epochs // 2)
    return {
        "fine-tuned": _classifier(
            base,
            head,
            learningRate=rate,
            fineTuneEpochs=epochs - head,
            trainableLayers=-1,
            fineTuneLearningRate=rate / 10,
        ),
        "from scratch": _classifier(scratch, epochs, trainableLayers=-1, learningRate=rate),
    }


def transfer_pays(spark, args) -> dict:
    """Fine-tuned from the base against the same network from random weights, at each budget
    of epochs and learning rate: test accuracy on every test image of 5-9."""
    from sparktf.datasets import load_image_folder

    base = tr.pretrained_base(args.work, args.mnist)
    scratch = tr.scratch_copy(args.work)
    train = load_image_folder(
        spark, tr.write_digit_jpegs(args.work, args.mnist, "train", args.per_class), content=True
    ).cache()
    test = load_image_folder(
        spark, tr.write_digit_jpegs(args.work, args.mnist, "test", None), content=True
    ).cache()
    rows, test_rows = train.count(), test.count()
    print(f"transfer: {rows} labelled training images (5-9), {test_rows} test images")
    figures: dict = {}
    for epochs in args.budgets:
        best = {"fine-tuned": 0.0, "from scratch": 0.0}
        for rate in args.rates:
            for name, estimator in _sides(base, scratch, epochs, rate).items():
                start = time.perf_counter()
                accuracy = _accuracy(estimator.fit(train), test)
                seconds = time.perf_counter() - start
                figures[f"{name}, {epochs} epochs, rate {rate:g}"] = accuracy
                best[name] = max(best[name], accuracy)
                print(
                    f"  {epochs:>3} epochs, rate {rate:<6g} {name:<12} test accuracy "
                    f"{accuracy:.4f}  ({seconds:.0f} s)"
                )
        gain = best["fine-tuned"] - best["from scratch"]
        print(
            f"  {epochs:>3} epochs, best rate of each: fine-tuned {best['fine-tuned']:.4f}, from "
            f"scratch {best['from scratch']:.4f}: transfer gain {100 * gain:+.1f} points "
            "(target: +10)"
        )
    return figures


def _sparktf_images_per_second(spark, folder: str, base: str, side: int, epochs: int) -> dict:
    from sparktf.datasets import load_image_folder

    train = load_image_folder(spark, folder)
    estimator = _classifier(
        base, epochs, featuresCol="path", trainableLayers=-1, imageSize=[side, side]
    )
    model = estimator.fit(train)
    worker = model.history["worker"]
    rows = train.count()
    return {
        "imagesPerSecond": rows * epochs / worker["timing"]["train"],
        "threads": worker.get("threads"),
        "rows": rows,
    }


def _baseline_images_per_second(folder: str, base: str, side: int, epochs: int, threads) -> float:
    """The plain Keras baseline in a process of its own, so its TensorFlow threads are set
    before TensorFlow starts (as sparktf's task sets them)."""
    command = [
        sys.executable,
        __file__,
        "--baseline",
        json.dumps(
            {"folder": folder, "base": base, "side": side, "epochs": epochs, "threads": threads}
        ),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _run_baseline(settings: dict) -> None:
    import tensorflow as tf

    threads = settings.get("threads")
    if threads:  # as sparktf's configure_tensorflow sets them in a task
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(threads))))
    import keras

    files, labels = tr.folder_files(settings["folder"])
    model = tr.headed(keras, settings["base"], 5)
    print(
        tr.keras_fit_images_per_second(
            model, files, labels, settings["side"], 32, settings["epochs"]
        )
    )


def input_pipeline(spark, args, base: str, side: int, name: str) -> dict:
    """sparktf's fine-tune from JPEG files in one task against the plain Keras baseline, each
    run ``--repeats`` times in turn (the machine's load changes): the medians and their ratio."""
    import statistics

    folder = tr.write_digit_jpegs(args.work, args.mnist, "train", args.speed_images // 5)
    ours, baseline = [], []
    for _ in range(args.repeats):
        run = _sparktf_images_per_second(spark, folder, base, side, args.speed_epochs)
        ours.append(run["imagesPerSecond"])
        baseline.append(
            _baseline_images_per_second(folder, base, side, args.speed_epochs, run["threads"])
        )
    mine, theirs = statistics.median(ours), statistics.median(baseline)
    print(
        f"input pipeline, {name} at {side}x{side}, {run['rows']} JPEG files x "
        f"{args.speed_epochs} epochs, threads {run['threads']}, median of {args.repeats}:\n"
        f"  sparktf (one task, by path) {mine:.1f} images/s {[round(v) for v in ours]}\n"
        f"  Keras fit over tf.data      {theirs:.1f} images/s {[round(v) for v in baseline]}\n"
        f"  ratio {mine / theirs:.2f}x (target 0.9x)"
    )
    return {"sparktf": mine, "keras": theirs, "ratio": mine / theirs}


def mobilenet_base(work: str, side: int) -> str:
    path = os.path.join(work, f"mobilenetv2-{side}.keras")
    if not os.path.exists(path):
        import keras

        keras.utils.set_random_seed(0)
        network = keras.applications.MobileNetV2(
            weights=None, input_shape=(side, side, 3), classes=5
        )
        network.save(path)
    return path


def search(spark, args) -> None:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import ParamGridBuilder

    from sparktf import plot_sensitivity, tuning_report
    from sparktf.datasets import load_image_folder
    from sparktf.search import HalvingCrossValidator

    base = tr.pretrained_base(args.work, args.mnist)
    train = load_image_folder(
        spark, tr.write_digit_jpegs(args.work, args.mnist, "train", args.per_class), content=True
    ).cache()
    estimator = _classifier(base, args.epochs, hiddenLayers=[32])  # dropout follows it
    grid = (
        ParamGridBuilder()
        .addGrid(estimator.learningRate, [1e-3, 3e-3])
        .addGrid(estimator.trainableLayers, [0, -1])
        .addGrid(estimator.dropout, [0.0, 0.3])
        .build()
    )
    validator = HalvingCrossValidator(
        estimator=estimator,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        numFolds=2,
        seed=3,
    )
    start = time.perf_counter()
    fitted = validator.fit(train)
    print(f"search: {len(grid)} maps x 2 folds, halving, {time.perf_counter() - start:.0f} s")
    report = tuning_report(fitted)
    print(report.head(8).to_string())
    figure = os.path.join(args.work, "transfer-sensitivity.png")
    plot_sensitivity(report, x="learningRate", line="trainableLayers", path=figure)
    print(f"  sensitivity plot: {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist", nargs="?", help="folder of the MNIST IDX files")
    parser.add_argument("--work", default="/tmp/sparktf-transfer")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=10, help="the search's budget")
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=[2, 4, 8, 16], help="epochs of each side"
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-3, 1e-2])
    parser.add_argument("--speed-images", type=int, default=5000)
    parser.add_argument("--speed-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each speed side")
    parser.add_argument("--mobilenet", action="store_true")
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--skip-transfer", action="store_true")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        _run_baseline(json.loads(args.baseline))
        return
    if not args.mnist:
        parser.error("the MNIST folder is required")
    print(describe())
    spark = _spark()
    if not args.skip_transfer:
        transfer_pays(spark, args)
    input_pipeline(spark, args, tr.pretrained_base(args.work, args.mnist), tr.BASE_SIDE, "0-4 base")
    if args.mobilenet:
        input_pipeline(spark, args, mobilenet_base(args.work, 160), 160, "MobileNetV2")
    if args.search:
        search(spark, args)


if __name__ == "__main__":
    main()
