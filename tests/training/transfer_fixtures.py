"""The pretrained networks and quadrant data the TFClassifier transfer tests (test_transfer_*.py)
share, as fixtures.

``bases`` pretrains a tiny conv net on the quadrant images and saves it beside the same network
untrained; ``quadrants`` holds the new task's (train, test) DataFrames. Each is built once per
test session. The test modules load this module with ``pytest_plugins``, not as a conftest.py in
this folder: a second conftest.py would take the module name ``conftest`` that tests elsewhere in
the suite import from (``from conftest import step_result``). Loaded so, its fixtures are visible
to the whole session. setup.cfg keeps ``*_fixtures.py`` out of the doctest collection, which
would otherwise import it before a ``pytest_plugins`` names it, too early for pytest to rewrite
its asserts.
"""

from __future__ import annotations

import pytest
from pyspark.ml.linalg import Vectors
from transfer_support import NEW_LABELS, SIZE, _images


def _network(keras):
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.MaxPooling2D(4, name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(8, activation="relu", name="embed")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def bases(tmp_path_factory):
    """A tiny conv net pretrained on the quadrants, and the same network untrained (paths)."""
    import keras

    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("bases")
    x, y = _images(600, seed=0)
    trained = _network(keras)
    trained.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    trained.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert trained.evaluate(x, y, verbose=0)[1] > 0.95  # the pretraining worked
    trained.save(folder / "pretrained.keras")
    _network(keras).save(folder / "random.keras")
    return str(folder / "pretrained.keras"), str(folder / "random.keras")


@pytest.fixture(scope="session")
def quadrants(spark):
    """New images of the same kind with new labels: (train, test) DataFrames."""

    def frame(rows: int, seed: int):
        x, quadrant = _images(rows, seed)
        data = [
            (Vectors.dense(row.ravel().tolist()), float(NEW_LABELS[q]))
            for row, q in zip(x, quadrant, strict=True)
        ]
        return spark.createDataFrame(data, ["features", "label"]).cache()

    return frame(320, seed=1), frame(200, seed=2)
