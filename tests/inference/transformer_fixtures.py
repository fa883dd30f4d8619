"""The models and data the TFGraphTransformer tests (test_transformer_*.py) share, as fixtures.

Every model is built here, small, in a temporary folder: Keras files (.keras, .h5), a frozen
GraphDef with the seed-style scalar encoded-image input, a batched frozen GraphDef, and a
SavedModel with two signatures (two inputs and two outputs each). The tests compare predictions
with the same model applied directly in TensorFlow. Each is built once per test session and
keeps its path, so a Python worker that has loaded a model serves it to every module's tests.

The test modules load this module with ``pytest_plugins``, not as a conftest.py in this folder:
a second conftest.py would take the module name ``conftest`` that tests elsewhere in the suite
import from (``from conftest import step_result``). Loaded so, its fixtures are visible to the
whole session; a test module defining a fixture of the same name (tests/tools has a ``folder``
and a ``photos``) keeps its own.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from transformer_support import LABELS, SIDE

# -- models, built once per session --------------------------------------------------------------


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def photos():
    """The two photographs scikit-learn ships: folder, and {name: bytes}."""
    import sklearn.datasets

    source = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    data = {}
    for name in ("china.jpg", "flower.jpg"):
        with open(os.path.join(source, name), "rb") as handle:
            data[name] = handle.read()
    return source, data


@pytest.fixture(scope="session")
def cnn(tf):
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((SIDE, SIDE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def keras_files(folder, mlp, cnn):
    paths = {"mlp.keras": mlp, "mlp.h5": mlp, "cnn.keras": cnn}
    for name, model in paths.items():
        model.save(str(folder / name))
    return {name: str(folder / name) for name in paths}


def _seed_graph(tf):
    """A frozen graph like the 2016 Inception one: ONE encoded JPEG string in, [1, N] out."""
    graph = tf.Graph()
    rng = np.random.RandomState(5)
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name="DecodeJpeg/contents")
        image = tf.io.decode_jpeg(contents, channels=3)
        image = tf.cast(tf.expand_dims(image, 0), tf.float32) / 255.0
        image = tf.compat.v1.image.resize_bilinear(image, [SIDE, SIDE])
        features = tf.reduce_mean(image, axis=[1, 2])  # [1, 3]
        weights = tf.constant(rng.randn(3, len(LABELS)).astype(np.float32) * 3)
        bias = tf.constant(rng.randn(len(LABELS)).astype(np.float32))
        tf.nn.softmax(tf.matmul(features, weights) + bias, name="softmax")
    return graph


@pytest.fixture(scope="session")
def seed_graph(tf, folder):
    graph = _seed_graph(tf)
    path = folder / "seed.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    labels = folder / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    return graph, str(path), str(labels)


@pytest.fixture(scope="session")
def batched_graph(tf, folder, mlp):
    """The MLP frozen with tf.function + convert_variables_to_constants_v2: x:0 [?, 4] in."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda x: mlp(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, 4], tf.float32, name="x")
    )
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    path = folder / "mlp.pb"
    path.write_bytes(graph_def.SerializeToString())
    return graph_def, str(path), frozen.outputs[0].name


class _TwoByTwo:
    """A SavedModel: serving_default (image, offset) -> (probs, brightness); arrays (a, b) ->
    (total, diff)."""

    def __init__(self, tf):
        rng = np.random.RandomState(6)
        module = tf.Module()
        module.w = tf.Variable(rng.randn(3, 2).astype(np.float32))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, SIDE, SIDE, 3], tf.float32, name="image"),
                tf.TensorSpec([None, 2], tf.float32, name="offset"),
            ]
        )
        def serve(image, offset):
            mean = tf.reduce_mean(image, axis=[1, 2])
            return {
                "probs": tf.nn.softmax(tf.matmul(mean, module.w) * 4 + offset),
                "brightness": tf.reduce_mean(mean, axis=1),
            }

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4], tf.float32, name="a"),
                tf.TensorSpec([None, 4], tf.float32, name="b"),
            ]
        )
        def arrays(a, b):
            return {"total": tf.reduce_sum(a * b, axis=1), "diff": a - b}

        module.serve, module.arrays = serve, arrays
        self.module = module


@pytest.fixture(scope="session")
def saved_model(tf, folder):
    holder = _TwoByTwo(tf)
    path = str(folder / "two_by_two")
    tf.saved_model.save(
        holder.module,
        path,
        signatures={"serving_default": holder.module.serve, "arrays": holder.module.arrays},
    )
    return holder.module, path


# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def features_df(spark, features):
    rows = [(i, features[i].tolist()) for i in range(len(features))]
    return spark.createDataFrame(rows, "id long, f array<float>").repartition(3).cache()


@pytest.fixture(scope="session")
def mixed_images(spark, photos):
    _, data = photos
    rows = [("ok.jpg", data["china.jpg"]), ("broken.jpg", b"\xff\xd8 truncated"), ("null", None)]
    return spark.createDataFrame(rows, "path string, content binary")
