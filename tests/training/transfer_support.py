"""What the TFClassifier transfer tests (test_transfer_*.py) share besides their fixtures
(transfer_fixtures.py): the quadrant images of the new task, its labels, the quick Params of a
new head, and how a model's accuracy is read."""

from __future__ import annotations

import numpy as np
from pyspark.ml.evaluation import MulticlassClassificationEvaluator

SIZE = 16
# Each class lights one quadrant of a 16x16 image; the new task names the quadrants anew.
NEW_LABELS = np.array([2, 0, 3, 1])

QUICK = {"hiddenLayers": [], "epochs": 1, "learningRate": 0.05, "batchSize": 16}


def _images(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quadrant = rng.integers(0, 4, rows)
    x = rng.normal(0.0, 1.0, (rows, SIZE, SIZE, 1)).astype(np.float32)
    half = SIZE // 2
    for i, q in enumerate(quadrant):
        top, left = (q // 2) * half, (q % 2) * half
        x[i, top : top + half, left : left + half] += 1.0
    return x, quadrant


def _accuracy(model, df) -> float:
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return evaluator.evaluate(model.transform(df))
