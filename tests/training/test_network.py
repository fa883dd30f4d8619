"""The built-in network family: batch normalization, augmentation, schedules, standardization."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors

from sparktf import TFClassifier
from sparktf.training._training import _optimizer

IMAGES = {"convLayers": [8], "inputShape": [8, 8, 1], "hiddenLayers": [32], "batchSize": 64}


def test_batch_norm_augmentation_and_cosine_train_well_and_predict_deterministically(digits):
    train, test = digits
    clf = TFClassifier(
        **IMAGES,
        epochs=8,
        learningRate=0.01,
        batchNormalization=True,
        augmentShift=0.1,
        augmentRotation=10.0,
        learningRateSchedule="cosine",
    )
    model = clf.fit(train)
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        model.transform(test)
    )
    assert accuracy >= 0.9
    names = [layer.name for layer in model.keras_model().layers]
    assert {"conv0_bn", "dense0_bn", "augment_shift", "augment_rotation"} <= set(names)


def test_cosine_schedule_decays_to_zero_over_training():
    import keras

    from sparktf._classifier_params import training_spec

    spec = training_spec(learningRate=0.1, learningRateSchedule="cosine", optimizer="sgd")

    def rate_at(optimizer, step: int) -> float:
        optimizer.iterations.assign(step)
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    cosine = _optimizer(keras, spec, total_steps=100)
    cosine.build([keras.Variable(0.0)])
    assert rate_at(cosine, 0) == pytest.approx(0.1)
    assert rate_at(cosine, 50) == pytest.approx(0.05, abs=1e-6)
    assert rate_at(cosine, 100) == pytest.approx(0.0, abs=1e-6)
    constant = _optimizer(keras, replace(spec, learning_rate_schedule="constant"), 100)
    constant.build([keras.Variable(0.0)])
    assert rate_at(constant, 100) == pytest.approx(0.1)


def test_a_pixel_blank_in_training_does_not_blow_up_predictions(spark):
    """Images are standardized per channel: a per-pixel scale would divide by a zero variance."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(200, 4, 4)).astype(float)
    images[:, 0, 0] = 0.0  # this pixel is blank in every training image
    labels = (images[:, 1:, 1:].mean(axis=(1, 2)) > 127).astype(float)
    df = spark.createDataFrame(
        [(Vectors.dense(x.ravel()), float(y)) for x, y in zip(images, labels, strict=True)],
        ["features", "label"],
    )
    model = TFClassifier(
        convLayers=[4], inputShape=[4, 4, 1], hiddenLayers=[8], epochs=2, batchSize=32
    ).fit(df)
    probe = images[0].copy()
    probe[0, 0] = 255.0
    raw = model.predictRaw(Vectors.dense(probe.ravel())).toArray()
    assert np.abs(raw).max() < 1e3


def test_a_feature_constant_in_training_is_centred_not_scaled(spark):
    """Flat features are standardized one by one; one that never varied in training must not be
    divided by Keras' 1e-7 floor when a new row has another value there."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    x[:, 0] = 0.0  # constant in every training row
    y = (x[:, 1] + x[:, 2] > 0).astype(float)
    df = spark.createDataFrame(
        [(Vectors.dense(row), float(label)) for row, label in zip(x, y, strict=True)],
        ["features", "label"],
    )
    model = TFClassifier(hiddenLayers=[8], epochs=5, batchSize=32, seed=3).fit(df)
    probes = x[:50].copy()
    probes[:, 0] = 1.0  # one unit off the training constant
    shifted = np.array([model.predictRaw(Vectors.dense(p)).toArray() for p in probes])
    plain = np.array([model.predictRaw(Vectors.dense(p)).toArray() for p in x[:50]])
    assert np.abs(shifted).max() < 100
    assert (shifted.argmax(axis=1) == plain.argmax(axis=1)).mean() > 0.8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"augmentShift": 0.5, "inputShape": [8, 8]}, r"'augmentShift' param .* \[0, 0\.5\)"),
        ({"augmentRotation": 200.0, "inputShape": [8, 8]}, r"'augmentRotation' .* \[0, 180\]"),
        (
            {"augmentShift": 0.1},
            r"'augmentShift' and 'augmentRotation' params .* need 'inputShape'",
        ),
        ({"learningRateSchedule": "linear"}, r"'learningRateSchedule' .* 'constant', 'cosine'"),
        ({"maxBroadcastBytes": -1}, r"'maxBroadcastBytes' param .* int in \[0, inf\)"),
    ],
)
def test_bad_network_params_fail_clearly(params, message):
    with pytest.raises(ValueError, match=message):
        TFClassifier(**params)._training_spec()
