"""One model trained on several Spark tasks (``numWorkers``), in a driver process of its own.

Used by tests/training/test_workers.py on ``local-cluster[2,1,...]`` (two executor JVMs, one core
each, so the two workers of a fit run in different executors; the Connect run is a step of
tests/jobs/connect_job.py). Each step reports what it saw; the job prints one JSON line
(``RESULT {...}``) that the tests assert on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import processes  # tests/jobs/processes.py, beside this script


def _workers(model) -> list[dict]:
    return model.history["worker"]["workers"]


def _summary(model, evaluator, test) -> dict:
    workers = _workers(model)
    return {
        "accuracy": evaluator.evaluate(model.transform(test)),
        "digests": [w["weightsDigest"] for w in workers],
        "shardRows": [w["shardRows"] for w in workers],
        "rowsRead": [w["rowsRead"] for w in workers],
        "jvmPids": [w["jvmPid"] for w in workers],
        "epochs": len(model.history["epochs"]["loss"]),
        "timing": [w["timing"] for w in workers],
    }


def _noisy_rows(spark, rows: int = 2000):
    """Two classes by the sign of a noisy sum, a third of the labels flipped, 40% held out
    (``held``): a wide network overfits the flips, so its held-out loss rises after a while."""
    import numpy as np
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    y = np.where(rng.random(rows) < 0.33, 1 - y, y)
    held = rng.random(rows) < 0.4
    data = [(Vectors.dense(x[i].tolist()), float(y[i]), bool(held[i])) for i in range(rows)]
    return spark.createDataFrame(data, ["features", "label", "held"]).repartition(2)


def _files_under(folder: str) -> list[str]:
    """Every file below ``folder``, relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


#: Stripes across, stripes down, diagonal stripes, a checkerboard: the base's four classes.
PATTERNS = 4


def _pattern_images(count: int, seed: int):
    """``count`` 32x32 RGB images (uint8) of the four patterns in random colours, periods and
    phases, with noise; and each one's pattern."""
    import numpy as np

    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, PATTERNS, count)
    rows, cols = np.mgrid[0:32, 0:32]
    images = np.empty((count, 32, 32, 3), dtype=np.uint8)
    for i, kind in enumerate(kinds):
        period, phase = rng.integers(4, 9), rng.integers(0, 8)
        along = (rows, cols, rows + cols, None)[kind]
        if along is None:
            on = ((rows + phase) // (period // 2) + (cols + phase) // (period // 2)) % 2 == 0
        else:
            on = ((along + phase) % period) < period // 2
        low, high = rng.integers(0, 90, 3), rng.integers(160, 256, 3)
        pixels = np.where(on[..., None], high, low) + rng.normal(0, 12, (32, 32, 3))
        images[i] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images, kinds


def _pretrained_base(path: str) -> dict:
    """A two-convolution network trained on the four patterns (standardized pixels), saved to
    ``path``: the base to fine-tune. Its first convolution's weights, to compare after."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(11)
    images, kinds = _pattern_images(640, seed=21)
    x = images.astype(np.float32)
    x = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    inputs = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    y = keras.layers.MaxPooling2D(2, name="pool1")(y)
    y = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    base = keras.Model(inputs, keras.layers.Dense(PATTERNS, activation="softmax", name="old")(y))
    base.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    base.fit(x, kinds, epochs=8, batch_size=32, verbose=0)
    base.save(path)
    return {
        "accuracy": float(base.evaluate(x, kinds, verbose=0)[1]),
        "conv1": [w.tolist() for w in base.get_layer("conv1").get_weights()],
        "conv2": [w.tolist() for w in base.get_layer("conv2").get_weights()],
    }


def _png_rows(spark, count: int, seed: int):
    """A DataFrame of ``count`` pattern images as PNG bytes (``content``) and a label: the new
    task names three of the four patterns anew (checkerboard 0, across 1, down 2); and the
    training pixels' per-channel mean."""
    import io

    import numpy as np
    from PIL import Image

    images, kinds = _pattern_images(count * 2, seed)
    keep = np.flatnonzero(kinds != 2)[:count]  # no diagonals
    relabel = {3: 0, 0: 1, 1: 2}
    rows = []
    for i in keep:
        buffer = io.BytesIO()
        Image.fromarray(images[i]).save(buffer, format="PNG")
        rows.append((buffer.getvalue(), float(relabel[int(kinds[i])])))
    mean = images[keep].reshape(-1, 3).astype(np.float64).mean(axis=0)
    frame = spark.createDataFrame(rows, "content binary, label double").repartition(2)
    return frame, mean


#: The steps, in order; ``killed`` injects a fault, so a job sharing the session runs it last.
STEPS = (
    "two_workers",
    "one_worker",
    "best_weights",
    "too_many",
    "staged",
    "fit_multiple",
    "fine_tune_images",
    "killed",
)


def scratch_conf() -> tuple[str, dict]:
    """The executors' temporary folder, the job's own (what the workers leave there is seen),
    and the session setting that gives it to them."""
    scratch = tempfile.mkdtemp(prefix="sparktf-workers-tmp-")
    return scratch, {"spark.executorEnv.TMPDIR": scratch}


def main(mode: str) -> None:
    from sparktf.session import get_spark

    scratch, conf = scratch_conf()
    spark = get_spark(master=mode, app_name="sparktf-workers-test", conf=conf)
    only = os.environ.get("SPARKTF_WORKERS_STEPS")
    results = run(spark, scratch, only.split(",") if only else STEPS)
    print("RESULT " + json.dumps(results, default=str), flush=True)
    spark.stop()
    shutil.rmtree(scratch, ignore_errors=True)


def run(spark, scratch: str, names) -> dict:
    """The steps ``names`` on ``spark`` (whose executors' TMPDIR is ``scratch``), each reporting
    what it saw. Also a step of tests/jobs/local_cluster_job.py."""
    from connect_job import (
        _step,  # tests/jobs/connect_job.py: every step reports, none hides another
    )
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassificationModel, TFClassifier
    from sparktf.datasets import load_digits

    results: dict = {"sessionModule": type(spark).__module__}
    train, test = load_digits(spark, num_partitions=2).randomSplit([0.8, 0.2], seed=7)
    train, test = train.cache(), test.cache()
    results["trainRows"] = train.count()
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    fast = {"hiddenLayers": [64], "epochs": 12, "batchSize": 64, "learningRate": 0.003}
    folder = tempfile.mkdtemp(prefix="sparktf-workers-")

    def two_workers():
        clf = TFClassifier(numWorkers=2, validationSplit=0.1, earlyStoppingPatience=3, **fast)
        model = clf.fit(train)
        path = os.path.join(folder, "two-workers")
        model.write().overwrite().save(path)
        loaded = TFClassificationModel.load(path)
        loaded.setPredictionCol("again").setProbabilityCol("p2").setRawPredictionCol("r2")
        both = loaded.transform(model.transform(test))  # each row through both models
        return {
            **_summary(model, evaluator, test),
            "loadedSame": both.where("prediction != again").count() == 0 and both.count() > 0,
            "loadedWorkers": loaded.getNumWorkers(),
        }

    def one_worker():
        model = TFClassifier(validationSplit=0.1, earlyStoppingPatience=3, **fast).fit(train)
        return {"accuracy": evaluator.evaluate(model.transform(test))}

    def best_weights():
        """Patience longer than the fit, and a held-out loss that is worse at the end than at
        its best: on two workers as in one task, the model keeps the best epoch's weights."""
        noisy = _noisy_rows(spark).cache()
        held = noisy.where("held")
        loss = MulticlassClassificationEvaluator(metricName="logLoss")
        params = dict(hiddenLayers=[128], learningRate=0.01, epochs=12, batchSize=32, seed=5)
        out = {}
        for workers in (2, 1):
            clf = TFClassifier(numWorkers=workers, validationIndicatorCol="held", **params)
            model = clf.setEarlyStoppingPatience(20).fit(noisy)
            out[f"workers{workers}"] = {
                "valLoss": model.history["epochs"]["val_loss"],
                "modelValLoss": loss.evaluate(model.transform(held)),
            }
        noisy.unpersist()
        return out

    def staged():
        clf = TFClassifier(numWorkers=2, maxBroadcastBytes=0, validationSplit=0.2, **fast)
        return _summary(clf.fit(train), evaluator, test)

    def too_many():
        start = time.time()
        try:
            TFClassifier(numWorkers=3, **dict(fast, batchSize=66)).fit(train)
        except Exception as exc:
            return {"error": str(exc), "type": type(exc).__name__, "seconds": time.time() - start}
        return {"error": None, "seconds": time.time() - start}

    def fit_multiple():
        """Two maps, each on its own two workers: images through batch normalization,
        augmentation and a schedule; and a map whose loss becomes NaN."""
        clf = TFClassifier(numWorkers=2, **fast)
        images = {
            clf.convLayers: [8],
            clf.inputShape: [8, 8, 1],
            clf.hiddenLayers: [32],
            clf.batchNormalization: True,
            clf.augmentShift: 0.1,
            clf.learningRateSchedule: "cosine",
            clf.epochs: 5,
            clf.batchSize: 32,
            clf.learningRate: 0.01,
        }
        nan = {clf.learningRate: 1e38, clf.optimizer: "sgd", clf.standardization: False}
        models = dict(clf.fitMultiple(train, [images, nan]))
        return {
            "failures": [models[i].trainingFailure for i in range(2)],
            "images": _summary(models[0], evaluator, test),
        }

    def fine_tune_images():
        """A pretrained base fine-tuned on PNG bytes on two workers: the head first (base
        frozen), then one epoch with the base's top convolution unfrozen; standardized by
        moments pooled over both workers' shards."""
        import numpy as np

        from sparktf.training._transfer import BASE_NAME

        start = time.time()
        pretrained = _pretrained_base(os.path.join(folder, "base.keras"))
        images, mean = _png_rows(spark, 96, seed=31)
        held, _ = _png_rows(spark, 60, seed=41)
        clf = TFClassifier(
            featuresCol="content",
            imageSize=[32, 32],
            imageScaling="standardize",
            baseModel=os.path.join(folder, "base.keras"),
            trainableLayers=1,
            fineTuneEpochs=1,
            fineTuneLearningRate=1e-3,
            hiddenLayers=[],
            dropout=0.0,
            epochs=4,
            batchSize=16,
            learningRate=0.05,
            numWorkers=2,
            seed=3,
        )
        fit_start = time.time()
        model = clf.fit(images)
        fit_seconds = time.time() - fit_start
        network = model.keras_model()
        base = network.get_layer(BASE_NAME)

        def same(name: str) -> bool:
            now = base.get_layer(name).get_weights()
            pairs = zip(now, pretrained[name], strict=True)
            return all(np.array_equal(a, np.asarray(b)) for a, b in pairs)

        workers = _workers(model)
        return {
            "baseAccuracy": pretrained["accuracy"],
            "accuracy": evaluator.evaluate(model.transform(held)),
            "digests": [w["weightsDigest"] for w in workers],
            "jvmPids": [w["jvmPid"] for w in workers],
            "shardRows": [w["shardRows"] for w in workers],
            "epochs": len(model.history["epochs"]["loss"]),
            "conv1Unchanged": same("conv1"),
            "conv2Unchanged": same("conv2"),
            "standardizeMean": np.ravel(network.get_layer("standardize").mean).tolist(),
            "pixelMean": mean.tolist(),
            "seconds": time.time() - start,
            "fitSeconds": fit_seconds,
            "timing": [w["timing"] for w in workers],
        }

    def killed():
        """A worker's training process killed mid-fit (TensorFlow loaded): the stage is run
        again, nothing hangs, no training process is left behind."""
        before = set(processes.worker_processes(scratch))
        files_before = set(_files_under(scratch))
        victims: list[int] = []
        stop = threading.Event()

        def kill_one():
            while not stop.is_set():
                found = [
                    p
                    for p in processes.worker_processes(scratch)
                    if p not in before and processes.tensorflow_loaded(p)
                ]
                if found:
                    time.sleep(3.0)  # into its training
                    try:
                        os.kill(found[0], signal.SIGKILL)
                        victims.append(found[0])
                    except ProcessLookupError:
                        continue
                    return
                time.sleep(0.2)

        thread = threading.Thread(target=kill_one, daemon=True)
        thread.start()
        start = time.time()
        outcome: dict = {}
        try:
            model = TFClassifier(numWorkers=2, **dict(fast, epochs=20)).fit(train)
            outcome["accuracy"] = evaluator.evaluate(model.transform(test))
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            stop.set()
        outcome["seconds"] = time.time() - start
        outcome["killed"] = victims
        time.sleep(3.0)
        outcome["left"] = [p for p in processes.worker_processes(scratch) if p not in before]
        # what the workers left in their temporary folder (the peer of the killed worker is
        # killed by Spark when the barrier stage fails)
        outcome["files"] = [f for f in _files_under(scratch) if f not in files_before]
        return outcome

    steps = {
        "two_workers": two_workers,
        "one_worker": one_worker,
        "best_weights": best_weights,
        "too_many": too_many,
        "staged": staged,
        "fit_multiple": fit_multiple,
        "fine_tune_images": fine_tune_images,
        "killed": killed,
    }
    for name in names:
        _step(results, name, steps[name])
    train.unpersist()
    test.unpersist()
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "local-cluster[2,1,1024]")
