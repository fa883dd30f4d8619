"""A tuning job, then a deployment of its best model, in its own driver process against a
given Spark master.

Used by tests/spark/test_cluster.py (a test process holds one SparkContext, so a job on another
master needs a driver of its own). Prints one JSON line with where every model was trained, how the
best model deployed through TFGraphTransformer agrees with it, and what the Python workers'
daemon had loaded. ``--preload`` starts the session with ``preload_tensorflow=True``.
"""

from __future__ import annotations

import json
import os
import sys


def _daemon_info(_rows):
    """Where this Python worker was forked from, and whether that daemon holds TensorFlow."""
    parent = os.getppid()
    with open(f"/proc/{parent}/cmdline", "rb") as handle:
        command = handle.read().replace(b"\0", b" ").decode()
    with open(f"/proc/{parent}/maps") as handle:
        loaded = "_pywrap_tensorflow" in handle.read()
    yield json.dumps({"daemon": command, "tensorflowInDaemon": loaded})


def main(master: str, preload: bool) -> None:
    from sparktf.session import get_spark

    spark = get_spark(master=master, app_name="sparktf-cluster-test", preload_tensorflow=preload)
    try:
        print("RESULT " + json.dumps(grid_and_deploy(spark)), flush=True)
    finally:
        spark.stop()


def grid_and_deploy(spark) -> dict:
    """The cross-validated grid on ``spark``'s executors and its best model deployed through
    TFGraphTransformer: where each model was trained, the agreement, the workers' daemons.
    Also a step of tests/jobs/local_cluster_job.py."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from sparktf import TFClassifier, TFGraphTransformer
    from sparktf.datasets import load_digits

    driver_jvm = spark.sparkContext._jvm.ProcessHandle.current().pid()
    train, test = load_digits(spark, num_partitions=4).randomSplit([0.8, 0.2], seed=7)
    clf = TFClassifier(epochs=6, batchSize=64)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[16], [48]])
        .addGrid(clf.learningRate, [0.003, 0.01])
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    model = CrossValidator(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=2,
        collectSubModels=True,
        seed=3,
    ).fit(train)
    trained = [m.history["worker"] for fold in model.subModels for m in fold]
    # Deploy the best model as a plain Keras model, broadcast to the executors.
    deploy = TFGraphTransformer.fromKeras(
        model.bestModel.keras_model(), inputCol="features", outputCol="scores"
    )
    both = deploy.transform(model.transform(test)).select("prediction", "scores").collect()
    agree = sum(int(r.prediction) == max(range(10), key=r.scores.__getitem__) for r in both)
    daemons = spark.sparkContext.parallelize(range(4), 4).mapPartitions(_daemon_info)
    result = {
        "driverJvmPid": driver_jvm,
        "driverPid": os.getpid(),
        "trials": trained,
        "best": model.bestModel.history["worker"],
        "avgMetrics": model.avgMetrics,
        "testAccuracy": evaluator.evaluate(model.transform(test)),
        "deployedAgreement": agree / len(both),
        "daemons": sorted(set(daemons.collect())),
    }
    return result


def staged(master: str, staging_dir: str) -> None:
    """Two staged grids on executors with a 512 MiB heap: 40,000 and 160,000 generated rows of
    784 float features (125 and 500 MiB as float32), built on the executors, never on the
    driver. Prints the tasks' peak memory per size, the driver's, and the accuracy."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.sql import functions as F

    from sparktf import TFClassifier
    from sparktf.session import get_spark
    from sparktf.training._training import peak_rss_mib

    spark = get_spark(
        master=master, app_name="sparktf-staging-test", conf={"spark.executor.memory": "512m"}
    )
    try:
        clf = TFClassifier(
            hiddenLayers=[16],
            epochs=1,
            batchSize=256,
            learningRate=0.01,
            maxBroadcastBytes=64 * 1024 * 1024,
            stagingDir=staging_dir,
        )
        maps = [{clf.learningRate: 0.01}, {clf.learningRate: 0.003}]
        peaks = {}
        for rows in (40_000, 160_000):
            # 784 uniform draws per row from one seeded rand() in an array transform: one
            # expression to plan, where 784 rand() columns took the driver seconds per query
            draws = F.transform(F.sequence(F.lit(1), F.lit(784)), lambda _: F.rand(7))
            data = spark.range(rows, numPartitions=8).select(
                draws.cast("array<float>").alias("features")
            )
            data = data.withColumn("label", (F.col("features")[0] > 0.5).cast("double"))
            models = dict(clf.fitMultiple(data, maps))
            peaks[rows] = max(m.history["worker"]["peakRssMiB"] for m in models.values())
        # the accuracy of the larger grid's first model (the one reported)
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
            models[0].transform(data.limit(2000))
        )
        result = {
            "taskPeakRssMiB": peaks,
            "driverPeakRssMiB": peak_rss_mib(),
            "accuracy": accuracy,
            "left": os.listdir(staging_dir),
        }
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    if "--staged" in sys.argv:
        staged(sys.argv[1], sys.argv[sys.argv.index("--staged") + 1])
    else:
        main(sys.argv[1], "--preload" in sys.argv[2:])
