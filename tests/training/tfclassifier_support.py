"""What the TFClassifier tests (test_classification_*.py) share besides their fixture
(tfclassifier_fixtures.py): the small network's Params, and how scored probabilities are read
in a known order."""

from __future__ import annotations

import numpy as np
from rows import rows_by  # tests/rows.py

SMALL = {"hiddenLayers": [32], "epochs": 4, "batchSize": 64, "learningRate": 0.01}


def _probabilities(df, col="probability"):
    rows = rows_by(df.select("image_id", col), "image_id")
    return np.array([r[1].toArray() for r in rows])
