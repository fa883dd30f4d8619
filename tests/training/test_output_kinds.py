"""A kerasModel's output kind: logits or probabilities, decided once for training, search and
transform (kerasModelOutput: auto, logits, probabilities)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from sparktf import TFClassifier

CLASSES, FEATURES = 3, 6


def _separable(rows: int = 240, seed: int = 5):
    """Three well separated blobs: a trained network is confident on them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, rows)
    centres = rng.normal(0.0, 4.0, (CLASSES, FEATURES))
    x = (centres[y] + rng.normal(0.0, 1.0, (rows, FEATURES))).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def blobs(spark):
    x, y = _separable()
    rows = [(Vectors.dense(f.tolist()), float(label)) for f, label in zip(x, y, strict=True)]
    return spark.createDataFrame(rows, ["features", "label"]).cache(), x


def _probability_heads():
    """The spellings of a softmax output, each as a kerasModel."""
    import keras

    def seq(*layers):
        return keras.Sequential([keras.Input((FEATURES,)), *layers])

    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    functional = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(hidden))
    return {
        "Softmax()": seq(keras.layers.Dense(CLASSES), keras.layers.Softmax()),
        "Activation('softmax')": seq(
            keras.layers.Dense(CLASSES), keras.layers.Activation("softmax")
        ),
        "nested model": seq(functional),
        "softmax then dropout": seq(keras.layers.Dense(CLASSES), keras.layers.Softmax(),
                                    keras.layers.Dropout(0.1)),
    }  # fmt: skip


def _network_probabilities(model, x: np.ndarray) -> np.ndarray:
    out = np.asarray(model.keras_model().predict(x, verbose=0), dtype=np.float64)
    return out / out.sum(axis=1, keepdims=True)


def _transformed(model, df) -> np.ndarray:
    rows = model.transform(df).select("probability").collect()
    return np.array([r.probability.toArray() for r in rows])


def test_softmax_outputs_give_the_networks_own_probabilities(blobs, tf):
    df, x = blobs
    heads = _probability_heads()
    clf = TFClassifier(epochs=6, learningRate=0.05, batchSize=32, seed=11)
    maps = [{clf.kerasModel: head} for head in heads.values()]
    models = dict(clf.fitMultiple(df, maps))
    for i, name in enumerate(heads):
        model = models[i]
        assert model.hasModel, (name, model.trainingFailure)
        prob = _transformed(model, df)
        np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(prob, _network_probabilities(model, x), atol=1e-5,
                                   err_msg=name)  # fmt: skip
        top = prob.max(axis=1).mean()
        assert top > 0.9, (name, top)  # squashed toward 1/3 when taken for logits


def test_probabilities_said_for_a_model_detection_misses(blobs, tf):
    import keras

    df, x = blobs
    sigmoid = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dense(CLASSES, activation="sigmoid")]
    )  # one score in [0, 1] per class: rows do not sum to 1, so auto takes them for logits
    clf = TFClassifier(kerasModel=sigmoid, epochs=3, seed=3)
    auto = clf.fit(df)
    said = clf.copy().setKerasModelOutput("probabilities").fit(df)
    assert said.getKerasModelOutput() == "probabilities"
    np.testing.assert_allclose(_transformed(said, df), _network_probabilities(said, x), atol=1e-5)
    logits = np.asarray(auto.keras_model().predict(x, verbose=0), dtype=np.float64)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(_transformed(auto, df), softmax, atol=1e-5)


def test_logits_said_keeps_a_softmax_model_on_logits(blobs, tf):
    import keras

    df, x = blobs
    head = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(CLASSES),
                             keras.layers.Softmax()])  # fmt: skip
    model = TFClassifier(kerasModel=head, kerasModelOutput="LOGITS", epochs=1, seed=3).fit(df)
    out = np.asarray(model.keras_model().predict(x, verbose=0), dtype=np.float64)
    softmax = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)  # the user's choice
    np.testing.assert_allclose(_transformed(model, df), softmax, atol=1e-5)


def test_a_wrong_keras_model_output_is_refused(blobs):
    df, _ = blobs
    with pytest.raises(
        ValueError,
        match=r"The 'kerasModelOutput' param of TFClassifier must be one of 'auto', 'logits', "
        r"'probabilities'\. Got 'probs' instead\.",
    ):
        TFClassifier(kerasModelOutput="probs").fit(df)


def test_search_scores_a_softmax_model_on_its_own_probabilities(tf):
    """The halving search's in-task logLoss of a model ending in Softmax() is the logLoss of
    the network's probabilities (not of a second softmax over them)."""
    import keras

    from sparktf._classifier_params import training_spec
    from sparktf._loading import load_keras_bytes
    from sparktf.search._metrics import MetricSpec
    from sparktf.search._worker import SearchData, TrialTask, run_trial
    from sparktf.training._plans import TrainingData

    x, y = _separable(rows=160)
    folds = np.where(np.arange(len(y)) % 4 == 0, 0, -1)
    head = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(CLASSES),
                             keras.layers.Softmax()])  # fmt: skip
    spec = training_spec(kerasModel=head, epochs=10, learningRate=0.02, seed=2)
    shared = SearchData(TrainingData(FEATURES, CLASSES, x=x, y=y), folds)
    task = TrialTask(map_index=0, fold=0, initial_epoch=0, epochs=10, name="m0-f0")
    metric = MetricSpec("logLoss", larger_better=False)
    result = run_trial(task, spec, shared, metric, None, None)
    assert result["error"] is None and result["outputsLogits"] is False
    held = folds == 0
    prob = load_keras_bytes(result["model"]).predict(x[held], verbose=0).astype(np.float64)
    prob /= prob.sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(np.clip(prob[np.arange(held.sum()), y[held]], 1e-15, None)))
    assert result["metric"] == pytest.approx(expected, rel=1e-6)
    assert expected < 0.3
