"""The networks a training task builds: the built-in family and a user's ``kerasModel``.

:func:`build_model` turns a :class:`~sparktf.training._plans.TrainingSpec` into an uncompiled Keras
model: standardization, optional augmentation, convolution blocks and dense layers (or the
user's architecture), ending in one score per class. TensorFlow is imported only inside
functions.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from sparktf.training._plans import TrainingSpec

__all__ = ["NETWORK_NAME", "PASS_THROUGH", "build_model", "keras_architecture", "outputs_logits"]

#: The name of every Keras network sparktf builds (what ``sparktf label`` recognizes).
NETWORK_NAME = "sparktf_classifier"

#: Layers that pass their input through unchanged when predicting: a softmax before them is
#: still the output.
PASS_THROUGH = frozenset(
    {
        "Dropout",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "ActivityRegularization",
        "Identity",
    }
)


def _softmax_output(tensor, depth: int = 0) -> bool:
    """Whether a Keras tensor is the output of a softmax: a Softmax layer, a layer whose
    activation is softmax (Activation('softmax'), Dense(activation='softmax'), ...), or a nested
    model (Sequential or functional) whose own output is one, seen through layers that pass
    their input through at prediction (dropout, noise, identity)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None or depth > 100:
        return False
    layer, node_index, tensor_index = history
    outputs = getattr(layer, "outputs", None)
    if outputs:  # a nested model: its own output
        return _softmax_output(outputs[tensor_index], depth + 1)
    kind = type(layer).__name__
    if kind == "Softmax":
        return True
    if getattr(getattr(layer, "activation", None), "__name__", "") == "softmax":
        return True
    if kind in PASS_THROUGH:
        inputs = layer._inbound_nodes[node_index].input_tensors
        return len(inputs) == 1 and _softmax_output(inputs[0], depth + 1)
    return False


def _probes_as_probabilities(model, num_features: int) -> bool:
    """Whether the model maps a probe batch (random features) to non-negative rows summing to
    1, as a network ending in a softmax does whatever its weights."""
    shape = tuple(model.input_shape[1:]) if model.input_shape[1:] else (num_features,)
    probe = np.random.default_rng(0).normal(size=(16, *shape)).astype(np.float32)
    out = np.asarray(model(probe, training=False), dtype=np.float64)
    finite = np.isfinite(out).all()
    return bool(finite and (out >= -1e-6).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))


def outputs_logits(spec: TrainingSpec, model, num_features: int) -> bool:
    """The one decision of whether ``model`` (built by :func:`build_model` from ``spec``)
    outputs logits or probabilities: the training loss, the multi-worker loop, the search's
    in-task metric and the transform's head all follow it (through the result's
    ``outputsLogits``). The built-in family gives logits; a ``kerasModel`` gives what
    ``kerasModelOutput`` says, or with ``auto`` probabilities when its output is a softmax or
    it gives probability rows on a probe batch."""
    if not spec.keras_model or spec.keras_model_output == "logits":
        return True
    if spec.keras_model_output == "probabilities":
        return False
    return not (_softmax_output(model.outputs[0]) or _probes_as_probabilities(model, num_features))


def keras_architecture(value: Any) -> str:
    """Type converter for ``kerasModel``: a Keras model or its JSON architecture.

    Only the architecture is kept: a model object whose optimizer has taken steps (trained, or
    loaded from a file saved after training) is refused rather than silently trained again from
    new random weights."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value:
            try:
                json.loads(value)
            except ValueError as exc:
                raise TypeError(
                    "The 'kerasModel' param of TFClassifier must be a Keras model or its JSON "
                    f"architecture (keras.Model.to_json()). Got a string that is not JSON: {exc}"
                ) from None
        return value
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        _refuse_trained_weights(value)
        return to_json()
    raise TypeError(
        "The 'kerasModel' param of TFClassifier must be a Keras model or its JSON architecture "
        f"(keras.Model.to_json()). Got {type(value).__name__} instead."
    )


def _refuse_trained_weights(model: Any) -> None:
    try:
        steps = int(np.asarray(model.optimizer.iterations))
    except (AttributeError, TypeError, ValueError):
        return  # never compiled: no sign of trained weights
    if steps > 0:
        raise ValueError(
            "The 'kerasModel' param of TFClassifier takes an architecture, not weights: "
            f"TFClassifier trains it from new random weights, and this model's optimizer has "
            f"taken {steps} steps, so its trained weights would be lost. Pass "
            "kerasModel=model.to_json() to train the architecture from scratch; to start from "
            "the trained weights, model.save('base.keras') and pass baseModel='base.keras' "
            "(fine-tuning, see featureLayer and trainableLayers); or apply the trained model "
            "as it is with TFGraphTransformer(modelPath=...)."
        )


def _image_shape(spec: TrainingSpec) -> list[int]:
    """The shape features are reshaped to: ``inputShape``, with a channel axis added to a 2-D
    shape when convolutions or augmentation treat the features as images."""
    shape = list(spec.input_shape)
    images = spec.conv_layers or spec.augmented
    if images and len(shape) == 2:
        shape.append(1)
    return shape


def _augmentation(keras, spec: TrainingSpec, x):
    """Random shifts, rotations, flips and zooms, active only in training (Keras
    preprocessing layers)."""
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
    if spec.augment_flip:
        x = keras.layers.RandomFlip("horizontal", seed=seed + 2, name="augment_flip")(x)
    if spec.augment_zoom > 0:
        zoom = spec.augment_zoom
        x = keras.layers.RandomZoom(
            zoom, zoom, fill_mode="nearest", seed=seed + 3, name="augment_zoom"
        )(x)
    return x


def build_model(
    spec: TrainingSpec,
    num_features: int,
    num_classes: int,
    x_train=None,
    image=None,
    base: bytes | None = None,
):
    """Build the (uncompiled) Keras model described by ``spec``.

    Returns ``(model, outputs_logits)``: the model maps a batch of flat feature vectors (or,
    with ``image`` = (height, width, channels), of 0..255 pixels of an image column) to
    ``num_classes`` scores, and ``outputs_logits`` tells whether those scores are logits (the
    built-in family) or probabilities (see :func:`outputs_logits`).

    Standardization is per feature for flat inputs (a feature constant in training is only
    centred) and per channel (one mean and variance over
    all pixels) for images ([height, width, channels]): a per-pixel scale would blow up pixels
    that are almost always blank, such as the borders of MNIST digits. ``x_train`` (an array,
    or a ``tf.data.Dataset`` of feature batches) adapts the standardization. An image column's
    pixels are scaled as ``imageScaling`` says (:mod:`sparktf.training._image_layers`).
    ``base``: the ``.keras`` bytes of the spec's ``baseModel`` (:mod:`sparktf.training._transfer`).
    """
    import keras

    if image is not None:
        from sparktf.training._image_layers import image_input

        inputs, x = image_input(keras, spec, image, x_train, unit_scale_for_constants)
        x = _augmentation(keras, spec, x)
    else:
        inputs, x = _flat_input(keras, spec, num_features, x_train)
    if spec.keras_model:
        user = keras.models.model_from_json(spec.keras_model)
        outputs = user(x)
    elif spec.base_model:
        from sparktf.training._transfer import base_body

        outputs = base_body(keras, spec, x, num_classes, base, _builtin_layers)
    else:
        outputs = _builtin_layers(keras, spec, x, num_classes)
    model = keras.Model(inputs, outputs, name=NETWORK_NAME)
    if model.output_shape[-1] != num_classes:
        raise ValueError(
            f"The Keras model given in 'kerasModel' must output {num_classes} scores (one per "
            f"class). Got an output of shape {model.output_shape} instead."
        )
    return model, outputs_logits(spec, model, num_features)


def _flat_input(keras, spec: TrainingSpec, num_features: int, x_train):
    """The input of a network on flat feature vectors, and the tensor after standardization,
    the reshape of ``inputShape`` and augmentation."""
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
        unit_scale_for_constants(norm)
    return inputs, x


def unit_scale_for_constants(norm) -> None:
    """Give a feature that was constant in training a scale of 1 (it is only centred), as
    scikit-learn's ``StandardScaler`` does. Keras divides by ``max(std, 1e-7)``, so a value
    that differs from the constant at transform time (a pixel blank in every training image
    and inked in a new one) was multiplied by 10 million and decided the prediction alone."""
    variance = np.asarray(norm.adapt_variance.numpy(), dtype=np.float64)
    mean = np.asarray(norm.adapt_mean.numpy(), dtype=np.float64)
    constant = variance <= 1e-12 * np.maximum(mean**2, 1.0)
    if constant.any():
        norm.adapt_variance.assign(np.where(constant, 1.0, variance).astype(np.float32))
        norm.finalize_state()


def _as_shape(x_train, shape: list[int] | None):
    """Feature rows (array or dataset of batches) reshaped to images for a per-channel adapt."""
    if shape is None:
        return x_train
    if isinstance(x_train, np.ndarray):
        return x_train.reshape(-1, *shape)
    import tensorflow as tf

    return x_train.map(lambda batch: tf.reshape(batch, (-1, *shape)))


def _builtin_layers(keras, spec: TrainingSpec, x, num_classes: int, logits_init="glorot_uniform"):
    """Convolution blocks, then dense layers, then ``num_classes`` logits (whose kernel starts
    as ``logits_init``)."""
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
    return keras.layers.Dense(num_classes, kernel_initializer=logits_init, name="logits")(x)
