"""``sparktf label --model-output``: which models' outputs are logits, and their softmax."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from sparktf import TFClassifier
from sparktf._loading import keras_to_bytes
from sparktf.cli._label_scores import applies_softmax, sparktf_logits, with_softmax


@pytest.fixture(scope="module")
def rows(spark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    return spark.createDataFrame(
        [(Vectors.dense(f), float(label)) for f, label in zip(x, y, strict=True)],
        ["features", "label"],
    )


def _softmax_user_network():
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    out = keras.layers.Dropout(0.1)(keras.layers.Dense(3, activation="softmax")(hidden))
    return keras.Model(inputs, out)


def test_a_network_sparktf_trained_is_known_to_output_logits(rows, tmp_path):
    fitted = TFClassifier(hiddenLayers=[4], epochs=1, seed=1).fit(rows)
    assert sparktf_logits(fitted.modelBytes)
    path = tmp_path / "best_model.keras"
    path.write_bytes(fitted.modelBytes)
    assert applies_softmax(None, str(path), "auto", "auto")
    assert not applies_softmax(None, str(path), "auto", "probabilities")
    # a kerasModel ending in a softmax (seen through its dropout) gives probabilities already
    user = TFClassifier(kerasModel=_softmax_user_network(), epochs=1, seed=1).fit(rows)
    assert not user._outputs_logits
    assert not sparktf_logits(user.modelBytes)


def test_other_models_are_shown_as_they_are_unless_told(tmp_path):
    import keras

    inputs = keras.Input((4,))
    linear = keras.Model(inputs, keras.layers.Dense(3)(inputs))  # logits, not sparktf's
    assert not sparktf_logits(keras_to_bytes(linear))
    assert not sparktf_logits(b"not a keras archive")
    path = tmp_path / "other.keras"
    linear.save(path)
    assert not applies_softmax(None, str(path), "auto", "auto")
    assert applies_softmax(None, str(path), "auto", "logits")
    assert not applies_softmax(None, "saved_model/", "auto", "auto")  # not a .keras file


def test_the_softmax_of_the_scores_keeps_the_top_labels_and_their_order(spark):
    logits = np.array([[2.5, -1.0, 0.5], [-3.0, 4.0, 3.9]], dtype=np.float32)
    labels = ["a", "b", "c"]
    data = []
    for row in logits:
        order = np.argsort(-row)[:2]
        data.append(([float(v) for v in row], [(labels[i], float(row[i])) for i in order]))
    frame = spark.createDataFrame(
        data, "scores array<float>, topK array<struct<label:string, score:float>>"
    )
    out = with_softmax(frame).collect()
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    for row, want, given in zip(out, expected, data, strict=True):
        np.testing.assert_allclose(row["scores"], want, rtol=1e-5)
        assert [e["label"] for e in row["topK"]] == [label for label, _ in given[1]]
        np.testing.assert_allclose(
            [e["score"] for e in row["topK"]],
            [want[labels.index(label)] for label, _ in given[1]],
            rtol=1e-5,
        )
    assert frame.schema == with_softmax(frame).schema
