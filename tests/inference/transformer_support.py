"""What the TFGraphTransformer tests (test_transformer_*.py) share besides their fixtures
(transformer_fixtures.py): the image side and labels of the models, and how results are read
and compared."""

from __future__ import annotations

import os

import numpy as np
from rows import rows_by  # tests/rows.py

SIDE = 16
LABELS = ["coral reef", "scuba diver", "sea anemone", "brain coral"]


def _by_id(df, column="id"):
    return [r.asDict() for r in rows_by(df, column)]


def _by_name(df):
    return {os.path.basename(r["path"]): r.asDict() for r in df.collect()}


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-5, atol=1e-6)
