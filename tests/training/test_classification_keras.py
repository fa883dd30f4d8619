"""TFClassifier with a user's Keras architecture (``kerasModel``): trained, saved and loaded,
searched in a grid, and refused clearly when it does not fit the labels, is not a model, or
carries trained weights."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from tfclassifier_support import _probabilities

from sparktf import TFClassificationModel, TFClassifier
from sparktf.classification import TrainingError


def _user_model(units: int, softmax: bool):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(units, activation="tanh"),
            keras.layers.Dense(10, activation="softmax" if softmax else None),
        ]
    )


def test_user_keras_architecture_trains_saves_and_loads(digits, tmp_path):
    train, test = digits
    clf = TFClassifier(epochs=4, learningRate=0.01, kerasModel=_user_model(24, softmax=True))
    model = clf.fit(train)
    out = model.transform(test)
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out)
    assert acc > 0.85
    np.testing.assert_allclose(_probabilities(out).sum(axis=1), 1.0, atol=1e-5)
    layer_sizes = [w.shape for w in model.keras_model().get_weights()]
    assert (64, 24) in layer_sizes  # the user's architecture, not the built-in one

    clf.save(str(tmp_path / "est"))
    loaded = TFClassifier.load(str(tmp_path / "est"))
    assert loaded.getKerasModel() == clf.getKerasModel()
    model.save(str(tmp_path / "model"))
    again = TFClassificationModel.load(str(tmp_path / "model"))
    np.testing.assert_array_equal(_probabilities(out), _probabilities(again.transform(test)))


def test_user_architectures_in_a_grid(digits):
    from pyspark.ml.tuning import ParamGridBuilder

    train, _ = digits
    clf = TFClassifier(epochs=2, learningRate=0.01)
    grid = (
        ParamGridBuilder()
        .addGrid(
            clf.kerasModel,
            [_user_model(8, softmax=False).to_json(), _user_model(16, softmax=True).to_json()],
        )
        .build()
    )
    models = dict(clf.fitMultiple(train, grid))
    sizes = [
        sorted(w.shape for w in models[i].keras_model().get_weights() if len(w.shape) == 2)
        for i in range(2)
    ]
    assert (64, 8) in sizes[0] and (64, 16) in sizes[1]


def test_user_architecture_with_wrong_output_size_fails_clearly(digits):
    import keras

    train, _ = digits
    bad = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(3)])
    with pytest.raises(TrainingError, match=r"must output 10 scores"):
        TFClassifier(epochs=1, kerasModel=bad).fit(train)


def test_keras_model_param_rejects_non_models():
    with pytest.raises(TypeError, match=r"must be a Keras model or its JSON architecture"):
        TFClassifier(kerasModel=42)
    with pytest.raises(TypeError, match=r"a string that is not JSON"):
        TFClassifier(kerasModel="not json")


def test_a_keras_model_with_trained_weights_is_refused_not_retrained(tmp_path):
    import keras

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert TFClassifier(kerasModel=model).getKerasModel() == model.to_json()  # compiled only
    model.fit(np.ones((8, 4)), np.zeros((8, 2)), epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "trained.keras")
    model.save(path)
    message = (
        r"optimizer has taken 2 steps, so its trained weights would be lost\. Pass .*"
        r"model\.save\('base\.keras'\) and pass baseModel='base\.keras'"
    )
    for trained in (model, keras.models.load_model(path)):
        with pytest.raises(ValueError, match=message):
            TFClassifier(kerasModel=trained)
        with pytest.raises(ValueError, match=message):
            TFClassifier().setKerasModel(trained)
        assert TFClassifier(kerasModel=trained.to_json()).getKerasModel() == model.to_json()
