"""What the image-column TFClassifier tests (test_image_*.py) share besides their fixtures
(image_training_fixtures.py): the tiny network's Params, the coloured images of three classes,
how a folder of them is read as bytes, Spark image structs or paths, and how a fitted model's
output is read in a known order."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql import functions as F
from rows import rows_by  # tests/rows.py

# Tiny networks, a few epochs: each fit takes a few seconds.
FAST = {
    "imageSize": [16, 16],
    "convLayers": [4],
    "hiddenLayers": [8],
    "epochs": 4,
    "batchSize": 8,
    "learningRate": 0.02,
    "dropout": 0.0,
}
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))  # one per class


def _image(rng, label: int) -> Image.Image:
    """A noisy image of its class's colour, of a random size (the resize matters)."""
    height, width = int(rng.integers(25, 41)), int(rng.integers(30, 46))
    noise = rng.integers(-40, 41, size=(height, width, 3))
    pixels = np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _label(df, path_col: str):
    return df.withColumn("label", F.regexp_extract(F.col(path_col), r"c(\d)_", 1).cast("double"))


def _binary(spark, folder):
    return _label(spark.read.format("binaryFile").load(str(folder)), "path")


def _structs(spark, folder):
    df = spark.read.format("image").load(str(folder))
    return _label(df, "image.origin")


def _paths(spark, folder):
    return _binary(spark, folder).select(F.col("path").alias("file"), "label")


def _accuracy(model, df) -> float:
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return evaluator.evaluate(model.transform(df))


def _raw(df, column="rawPrediction"):
    rows = rows_by(df, "label", "name")
    return np.array([r[column].toArray() for r in rows])


def _named(df, path_col):
    return df.withColumn("name", F.regexp_extract(F.col(path_col), r"(c\d_\d+)", 1))
