"""sparktf end to end over Spark Connect, in a process of its own.

Used by tests/spark/test_connect.py. A process that has opened a Spark Connect session switches
pyspark into Connect mode for good, so the Connect tests run here, apart from the suite's
classic session. ``get_spark(remote="local[2]")`` starts a Connect server inside this process
and talks to it only through the Connect client: no SparkContext, no JVM calls from sparktf.

Prints one JSON line (``RESULT {...}``) with what every step produced; the tests assert on it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
import warnings


def _step(results: dict, name: str, fn) -> None:
    try:
        results[name] = fn()
    except Exception as exc:  # every step reports; one failure does not hide the others
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}


def main(remote: str) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from sparktf import TFClassificationModel, TFClassifier, TFGraphTransformer, tuning_report
    from sparktf.datasets import load_digits
    from sparktf.session import get_spark
    from sparktf.training._warm import WARM_ENV

    # the Connect server's Python workers start their training processes fresh (the path
    # sparktf takes wherever a warm process is unavailable); local-cluster covers warm starts
    os.environ[WARM_ENV] = "0"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spark = get_spark(remote=remote, app_name="sparktf-connect-test")
    results: dict = {
        "sessionModule": type(spark).__module__,
        "startWarnings": [str(w.message).splitlines()[0] for w in caught],
        "serverPython": spark.conf.get("spark.pyspark.python", None),
        "serverPort": spark.conf.get("spark.connect.grpc.binding.port", None),
        "clientEndpoint": spark.client._builder.endpoint,
        "python": sys.executable,
    }
    train, test = load_digits(spark, num_partitions=2).randomSplit([0.8, 0.2], seed=7)
    train, test = train.cache(), test.cache()
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    fast = {"epochs": 15, "batchSize": 64, "hiddenLayers": [32]}
    bad = '{"class_name": "Sequential", "config": {"layers": "not layers"}}'
    folder = tempfile.mkdtemp(prefix="sparktf-connect-")
    state: dict = {}

    def fit():
        model = TFClassifier(**fast).fit(train)
        state["model"] = model
        return {"accuracy": evaluator.evaluate(model.transform(test)), "pid": os.getpid()}

    def fit_multiple():
        clf = TFClassifier(**fast)
        maps = [{clf.learningRate: 3e-3}, {clf.kerasModel: bad}]
        models = dict(clf.fitMultiple(train, maps))
        return {
            "failures": [models[i].trainingFailure for i in range(2)],
            "pids": [models[i].history.get("worker", {}).get("pid") for i in range(2)],
        }

    def strict():
        from sparktf.errors import TrialFailedError

        clf = TFClassifier(failOnTrialError=True, **fast)
        try:
            list(clf.fitMultiple(train, [{clf.kerasModel: bad}]))
        except TrialFailedError as exc:
            return {"raised": "TrialFailedError", "message": str(exc)}
        return {"raised": None}

    def cross_validate():
        clf = TFClassifier(**fast)
        grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-5, 3e-3]).build()
        cv = CrossValidator(
            estimator=Pipeline(stages=[clf]),
            estimatorParamMaps=[{clf.learningRate: m[clf.learningRate]} for m in grid],
            evaluator=evaluator,
            numFolds=2,
            seed=3,
            parallelism=2,
        )
        model = cv.fit(train)
        report = tuning_report(model, clf)
        return {
            "avgMetrics": list(model.avgMetrics),
            "testAccuracy": evaluator.evaluate(model.transform(test)),
            "reportRows": len(report),
            "reportBest": float(report.loc[report["best"], "learningRate"].iloc[0]),
        }

    def persist():
        model = state["model"]
        path = os.path.join(folder, "model")
        model.write().overwrite().save(path)
        model.write().overwrite().save(path)  # overwrite an existing save
        loaded = TFClassificationModel.load(path)
        estimator_path = os.path.join(folder, "estimator")
        TFClassifier(**fast).write().overwrite().save(estimator_path)
        TFClassifier(**fast).write().overwrite().save(estimator_path)
        return {
            "accuracy": evaluator.evaluate(loaded.transform(test)),
            "estimatorEpochs": TFClassifier.load(estimator_path).getEpochs(),
        }

    def transformer():
        model = state["model"]
        stage = TFGraphTransformer.fromKeras(
            model.keras_model(), inputCol="features", outputCol="scores"
        )
        scored = stage.transform(test).select("scores").collect()
        # The same model from a file, planned as by a client without TensorFlow: in the workers.
        from sparktf.inference import _outline

        path = os.path.join(folder, "network.keras")
        model.keras_model().save(path)
        loaded = _outline.tensorflow_loaded
        _outline.tensorflow_loaded = lambda: False
        try:
            by_path = TFGraphTransformer(modelPath=path, inputCol="features", outputCol="scores")
            planned = by_path.transform(test).select("scores").collect()
        finally:
            _outline.tensorflow_loaded = loaded
        gap = max(
            abs(a - b)
            for x, y in zip(scored, planned, strict=True)
            for a, b in zip(x["scores"], y["scores"], strict=True)
        )
        return {"rows": len(scored), "width": len(scored[0]["scores"]), "workersPlanGap": gap}

    def staged():
        staging = os.path.join(folder, "staging")
        clf = TFClassifier(maxBroadcastBytes=1, stagingDir=staging, **fast)
        model = clf.fit(train)
        leftover = os.listdir(staging) if os.path.isdir(staging) else []
        return {"accuracy": evaluator.evaluate(model.transform(test)), "leftover": leftover}

    def halving():
        from sparktf.search import HalvingCrossValidator, HalvingCrossValidatorModel

        clf = TFClassifier(**{**fast, "epochs": 4})
        grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-5, 3e-3, 1e-2]).build()
        checkpoints = os.path.join(folder, "search")
        search = HalvingCrossValidator(
            estimator=clf,
            estimatorParamMaps=grid,
            evaluator=evaluator,
            numFolds=2,
            factor=3,
            checkpointDir=checkpoints,
        )
        model = search.fit(train)
        again = search.fit(train)
        path = os.path.join(folder, "halving")
        model.write().overwrite().save(path)
        loaded = HalvingCrossValidatorModel.load(path)
        return {
            "rungs": [t["rung"] for t in model.trials],
            "best": model.searchSummary["best"],
            "trained": [model.searchSummary["trialsTrained"], again.searchSummary["trialsTrained"]],
            "testAccuracy": evaluator.evaluate(model.transform(test)),
            "loadedTrials": loaded.trials == model.trials,
            "reportRungs": tuning_report(loaded)["rung"].tolist(),
        }

    def workers():
        from sparktf.errors import NotEnoughSlotsError

        start = time.time()
        model = TFClassifier(numWorkers=2, **fast).fit(train)
        fit_seconds = time.time() - start
        workers = model.history["worker"]["workers"]
        start = time.time()
        try:
            TFClassifier(numWorkers=3, **{**fast, "batchSize": 66}).fit(train)
            refused = None
        except NotEnoughSlotsError as exc:
            refused = str(exc)
        return {
            "accuracy": evaluator.evaluate(model.transform(test)),
            "digests": [w["weightsDigest"] for w in workers],
            "shardRows": [w["shardRows"] for w in workers],
            "warm": [w["timing"]["warm"] for w in workers],
            "refused": refused,
            "refusedSeconds": time.time() - start,
            "fitSeconds": fit_seconds,
        }

    for name, fn in [
        ("workers", workers),
        ("halving", halving),
        ("fit", fit),
        ("fitMultiple", fit_multiple),
        ("strict", strict),
        ("crossValidator", cross_validate),
        ("persistence", persist),
        ("transformer", transformer),
        ("staged", staged),
    ]:
        _step(results, name, fn)
    print("RESULT " + json.dumps(results), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "local[2]")
