"""TFClassifier in an ordinary pyspark.ml Pipeline, tuned by a CrossValidator, saved and loaded.

The Pipeline scales the pixels with MinMaxScaler and trains TFClassifier; the CrossValidator
tunes the classifier's hidden layers and learning rate through the Pipeline. The fitted
CrossValidatorModel (and its best PipelineModel) is saved, loaded back and gives the same
predictions.

Usage::

    python examples/pipeline_cv.py            # scikit-learn digits (bundled)
    python examples/pipeline_cv.py --quick    # small settings (also: SPARKTF_QUICK=1)

The Spark master comes from ``$SPARKTF_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import argparse
import os

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import MinMaxScaler
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

from sparktf import TFClassifier, get_spark
from sparktf.datasets import load_digits
from sparktf.persistence import load_cross_validator_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings for a fast run")
    parser.add_argument("--output", default="pipeline_cv_output", help="folder for the models")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("SPARKTF_QUICK") == "1"

    spark = get_spark(app_name="pipeline_cv")
    train, test = load_digits(spark).randomSplit([0.8, 0.2], seed=5)
    train = train.cache()

    scaler = MinMaxScaler(inputCol="features", outputCol="scaled")
    clf = TFClassifier(featuresCol="scaled", epochs=3 if quick else 10, seed=5)
    pipeline = Pipeline(stages=[scaler, clf])
    grid = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[32]] if quick else [[32], [64, 32]])
        .addGrid(clf.learningRate, [0.003, 0.03] if quick else [0.001, 0.01])
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(
        estimator=pipeline,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=2,
        seed=5,
        parallelism=2,
    )
    model = cv.fit(train)
    for params, metric in zip(grid, model.avgMetrics, strict=True):
        values = ", ".join(f"{p.name}={v}" for p, v in params.items())
        print(f"{values}: cross-validated accuracy {metric:.4f}")

    before = model.transform(test).select("image_id", "prediction").orderBy("image_id")
    accuracy = evaluator.evaluate(model.transform(test))
    print(f"Test accuracy of the best pipeline: {accuracy:.4f}")

    path = os.path.join(args.output, "cv_model")
    model.write().overwrite().save(path)
    loaded = load_cross_validator_model(path)
    after = loaded.transform(test).select("image_id", "prediction").orderBy("image_id")
    same = [r.prediction for r in before.collect()] == [r.prediction for r in after.collect()]
    print(f"Saved to {path}; loaded back: same predictions: {same}")
    print(f"Best model: {type(loaded.bestModel).__name__} of {len(loaded.bestModel.stages)} stages")
    if not isinstance(loaded.bestModel, PipelineModel) or not same:
        raise SystemExit("the loaded model predicts differently")


if __name__ == "__main__":
    main()
