"""The networks a training task builds: the built-in family and a user's ``kerasModel``.

:func:`build_model` turns a :class:`~sparktf.training._plans.TrainingSpec` into an uncompiled Keras
model: standardization, optional augmentation, convolution blocks and dense layers (or the
user's architecture), ending in one score per class. TensorFlow is imported only inside
functions.
"""

from __future__ import annotations

import numpy as np

from sparktf.training._plans import TrainingSpec

__all__ = ["build_model"]


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def _image_shape(spec: TrainingSpec) -> list[int]:
    """The shape features are reshaped to: ``inputShape``, with a channel axis added to a 2-D
    shape when convolutions or augmentation treat the features as images."""
    shape = list(spec.input_shape)
    images = spec.conv_layers or spec.augmented
    if images and len(shape) == 2:
        shape.append(1)
    return shape


def _augmentation(keras, spec: TrainingSpec, x):
    """Random shifts and rotations, active only in training (Keras preprocessing layers)."""
    seed = int(spec.seed) % (2**31)
    shift = spec.augment_shift
    if shift > 0:
        x = keras.layers.RandomTranslation(
            shift, shift, fill_mode="nearest", seed=seed, name="augment_shift"
        )(x)
    degrees = spec.augment_rotation
    if degrees > 0:
        x = keras.layers.RandomRotation(
            degrees / 360.0, fill_mode="nearest", seed=seed + 1, name="augment_rotation"
        )(x)
    return x


def build_model(spec: TrainingSpec, num_features: int, num_classes: int, x_train=None):
    """Build the (uncompiled) Keras model described by ``spec``.

    Returns ``(model, outputs_logits)``: the model maps a batch of flat feature vectors to
    ``num_classes`` scores, and ``outputs_logits`` tells whether those scores are logits (the
    built-in family) or probabilities (a user architecture ending in softmax).

    Standardization is per feature for flat inputs and per channel (one mean and variance over
    all pixels) for images ([height, width, channels]): a per-pixel scale would blow up pixels
    that are almost always blank, such as the borders of MNIST digits. ``x_train`` (an array,
    or a ``tf.data.Dataset`` of feature batches) adapts the standardization.
    """
    import keras

    inputs = keras.Input(shape=(num_features,), name="features")
    x = inputs
    shape = _image_shape(spec)
    image = len(shape) == 3
    norm = None
    if spec.standardization:
        norm = keras.layers.Normalization(axis=-1, name="standardize")
    if norm is not None and not image:
        x = norm(x)
    if shape:
        x = keras.layers.Reshape(tuple(shape), name="reshape")(x)
    if image:
        x = _augmentation(keras, spec, x)
        if norm is not None:
            x = norm(x)
    if norm is not None and x_train is not None:
        norm.adapt(_as_shape(x_train, shape if image else None))

    if spec.keras_model:
        user = keras.models.model_from_json(spec.keras_model)
        outputs = user(x)
        logits = not _ends_in_softmax(user)
    else:
        outputs = _builtin_layers(keras, spec, x, num_classes)
        logits = True
    model = keras.Model(inputs, outputs, name="sparktf_classifier")
    if model.output_shape[-1] != num_classes:
        raise ValueError(
            f"The Keras model given in 'kerasModel' must output {num_classes} scores (one per "
            f"class). Got an output of shape {model.output_shape} instead."
        )
    return model, logits


def _as_shape(x_train, shape: list[int] | None):
    """Feature rows (array or dataset of batches) reshaped to images for a per-channel adapt."""
    if shape is None:
        return x_train
    if isinstance(x_train, np.ndarray):
        return x_train.reshape(-1, *shape)
    import tensorflow as tf

    return x_train.map(lambda batch: tf.reshape(batch, (-1, *shape)))


def _builtin_layers(keras, spec: TrainingSpec, x, num_classes: int):
    """Convolution blocks, then dense layers, then ``num_classes`` logits."""
    activation = spec.activation
    batch_norm = spec.batch_normalization

    def activate(y, name: str):  # batch normalization, then the activation
        y = keras.layers.BatchNormalization(name=f"{name}_bn")(y)
        return keras.layers.Activation(activation, name=f"{name}_act")(y)

    for i, filters in enumerate(spec.conv_layers):
        if batch_norm:
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
            x = activate(x, f"conv{i}")
        else:
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation=activation, name=f"conv{i}"
            )(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(spec.hidden_layers):
        if batch_norm:
            x = keras.layers.Dense(units, use_bias=False, name=f"dense{i}")(x)
            x = activate(x, f"dense{i}")
        else:
            x = keras.layers.Dense(units, activation=activation, name=f"dense{i}")(x)
        if spec.dropout > 0:
            x = keras.layers.Dropout(spec.dropout, name=f"dropout{i}")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)
