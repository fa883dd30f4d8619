"""A halving search with a checkpoint folder, in a driver process of its own.

Used by tests/search/test_halving.py, which kills this process mid-search and runs it again with the
same folder. Prints one JSON line (``RESULT {...}``): the trials this run trained, the trials
the search has in all, and the best map's validation metric.
"""

from __future__ import annotations

import json
import sys


def main(folder: str) -> None:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier
    from sparktf.datasets import load_digits
    from sparktf.search import HalvingTrainValidationSplit
    from sparktf.session import get_spark

    spark = get_spark(master="local[2]", app_name="sparktf-search-test")
    try:
        train = load_digits(spark, num_partitions=2).cache()
        clf = TFClassifier(hiddenLayers=[32], epochs=9, batchSize=32, seed=5)
        maps = [{clf.learningRate: rate} for rate in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)]
        search = HalvingTrainValidationSplit(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
            factor=3,
            checkpointDir=folder,
            refit=False,
            seed=3,
        )
        model = search.fit(train)
        summary = model.searchSummary
        total = sum(r["maps"] for r in summary["rungs"])
        best = model.validationMetrics[summary["best"]]
        result = {"trained": summary["trialsTrained"], "total": total, "best": best}
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
