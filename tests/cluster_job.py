"""A tuning job run in its own driver process against a given Spark master.

Used by tests/test_cluster.py (a test process holds one SparkContext, so a job on another master
needs a driver of its own). Prints one JSON line with where every model was trained.
"""

from __future__ import annotations

import json
import os
import sys


def main(master: str) -> None:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from sparktf import TFClassifier
    from sparktf.datasets import load_digits
    from sparktf.session import get_spark

    spark = get_spark(master=master, app_name="sparktf-cluster-test")
    try:
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
        result = {
            "driverJvmPid": driver_jvm,
            "driverPid": os.getpid(),
            "trials": trained,
            "best": model.bestModel.history["worker"],
            "avgMetrics": model.avgMetrics,
            "testAccuracy": evaluator.evaluate(model.transform(test)),
        }
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
