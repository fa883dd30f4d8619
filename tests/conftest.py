"""One SparkSession for the whole suite (local[2]: training and inference run in tasks)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def spark():
    from sparktf.session import get_spark

    session = get_spark(master="local[2]", app_name="sparktf-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def digits(spark):
    """scikit-learn digits split 80/20 with a fixed seed: (train, test) DataFrames, cached."""
    from sparktf.datasets import load_digits

    df = load_digits(spark)
    train, test = df.randomSplit([0.8, 0.2], seed=7)
    return train.cache(), test.cache()
