"""The input side of a network trained on an image column: pixels in, scaled pixels out.

The network's input is ``Input(shape=(height, width, channels))`` fed with 0..255 pixel values
as float32 (decoded by :mod:`sparktf.image`, the same call at training and at transform); its
first layers apply ``imageScaling``, so the saved ``.keras`` file carries its own
preprocessing. Only Keras' own layers are used (no ``Lambda``), so the model loads in Keras'
safe mode. TensorFlow is imported only inside functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CAFFE_BGR_MEAN", "IMAGENET_MEAN", "IMAGENET_STD", "image_input", "scaling_layers"]

#: ImageNet's per-channel mean and standard deviation of [0, 1] RGB pixels (torchvision's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The BGR means of 0..255 pixels that Caffe's ImageNet models subtract (Keras' ``caffe`` mode).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def _per_channel(values: tuple[float, ...], channels: int) -> list[float]:
    """The values for ``channels`` channels: as they are for 3, their mean for grayscale."""
    return list(values) if channels == 3 else [float(np.mean(values))]


def _reverse_channels(keras, channels: int):
    """RGB -> BGR as a fixed, untrained 1x1 convolution (a permutation matrix)."""
    layer = keras.layers.Conv2D(
        channels, 1, use_bias=False, trainable=False, name="image_bgr", dtype="float32"
    )
    layer.build((None, None, None, channels))
    layer.set_weights([np.eye(channels, dtype=np.float32)[::-1].reshape(1, 1, channels, channels)])
    return layer


def scaling_layers(keras, scaling: str, channels: int) -> list[Any]:
    """The layers that apply ``scaling`` (see ``imageScaling``) to 0..255 pixels; the
    ``standardize`` layer is returned unadapted (its ``adapt`` runs on the training pixels)."""
    if scaling == "none":
        return []
    if scaling == "unit":
        return [keras.layers.Rescaling(1.0 / 255, name="image_unit")]
    if scaling == "signed":
        return [keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="image_signed")]
    if scaling == "imagenet":
        mean, std = _per_channel(IMAGENET_MEAN, channels), _per_channel(IMAGENET_STD, channels)
        return [
            keras.layers.Rescaling(1.0 / 255, name="image_unit"),
            keras.layers.Normalization(
                mean=mean, variance=[s * s for s in std], name="image_imagenet"
            ),
        ]
    if scaling == "caffe":
        mean = _per_channel(CAFFE_BGR_MEAN, channels)
        flip = [_reverse_channels(keras, channels)] if channels == 3 else []
        variance = [1.0] * channels
        return [*flip, keras.layers.Normalization(mean=mean, variance=variance, name="image_caffe")]
    if scaling == "standardize":
        return [keras.layers.Normalization(axis=-1, name="standardize")]
    raise ValueError(f"unknown imageScaling {scaling!r}")


def image_input(keras, spec: Any, shape: tuple[int, int, int], pixels=None, constants=None):
    """The input of a network on images of ``shape`` (height, width, channels), and the
    tensor after its scaling layers. ``pixels`` (a ``tf.data.Dataset`` of float32 pixel
    batches) adapts the ``standardize`` scaling; ``constants(norm)`` then gives channels that
    were constant in training a unit scale."""
    inputs = keras.Input(shape=tuple(shape), name="image", dtype="float32")
    x = inputs
    for layer in scaling_layers(keras, spec.image_scaling, shape[-1]):
        x = layer(x)
        if spec.image_scaling == "standardize" and pixels is not None:
            layer.adapt(pixels)
            if constants is not None:
                constants(layer)
    return inputs, x
