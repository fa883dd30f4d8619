"""The image Params of TFClassifier: how an image column becomes the network's input.

``IMAGE_DECLARED`` is appended to :data:`sparktf._classifier_params.DECLARED`. An image column
(encoded bytes, Spark's image struct, or paths of image files) is decoded by
:mod:`sparktf.image` to ``imageSize`` x ``imageChannels`` uint8 pixels, at training and at
transform alike; the scaling named by ``imageScaling`` and the augmentations are the first
layers of the Keras model itself (:mod:`sparktf.training._image_layers`).
"""

from __future__ import annotations

from typing import Any

from pyspark.ml.param import TypeConverters

from sparktf.image import IMAGE_SCALINGS
from sparktf.param.declare import Choice, Declared, FloatRange, IntList

__all__ = ["IMAGE_DECLARED", "IMAGE_SCALINGS", "image_size"]


def _image_channels(stage: Any, name: str) -> int:
    value = stage.getOrDefault(name)
    if value not in (1, 3):
        raise ValueError(
            f"The '{name}' param of {type(stage).__name__} must be 3 (RGB) or 1 (grayscale). "
            f"Got {value!r} instead."
        )
    return int(value)


def _image_size_check(stage: Any, name: str) -> list[int]:
    value = IntList(1)(stage, name)
    if value and len(value) != 2:
        raise ValueError(
            f"The '{name}' param of {type(stage).__name__} must be [height, width] (2 ints >= 1) "
            f"or empty. Got {value} instead."
        )
    return value


IMAGE_DECLARED = (
    Declared(
        "imageSize",
        "[height, width] that images of an image featuresCol (encoded bytes, Spark image "
        "structs, or paths of image files) are resized to, bilinear, at training and transform "
        "(list of 2 ints >= 1; empty: required for image columns)",
        TypeConverters.toListInt,
        [],
        _image_size_check,
        "list[int]",
    ),
    Declared(
        "imageChannels",
        "channels images are converted to: 3 (RGB) or 1 (grayscale)",
        TypeConverters.toInt,
        3,
        _image_channels,
        "int",
    ),
    Declared(
        "imageScaling",
        "the model's first layers scale the 0..255 pixels of an image column: standardize "
        "(per-channel mean and variance of the training pixels), unit ([0, 1]), signed "
        "([-1, 1]), imagenet ([0, 1] then ImageNet's mean and std per channel), caffe (RGB to "
        "BGR, ImageNet's BGR means subtracted) or none",
        TypeConverters.toString,
        "standardize",
        Choice(IMAGE_SCALINGS),
        "str",
    ),
    Declared(
        "augmentFlip",
        "training-time augmentation: flip each image left-right at random (bool). Needs an "
        "image column or inputShape; never applied when predicting",
        TypeConverters.toBoolean,
        False,
        kind="bool",
    ),
    Declared(
        "augmentZoom",
        "training-time augmentation: zoom each image in or out at random by up to this "
        "fraction (float in [0, 0.5); 0: off). Needs an image column or inputShape; never "
        "applied when predicting",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0, 0.5, "left"),
        "float",
    ),
)


def image_size(spec: Any, base_input_shape: tuple[int | None, ...] | None = None) -> tuple:
    """The ``(height, width)`` images are resized to for ``spec`` (a TrainingSpec): its
    ``imageSize``, else the size a base network's input (``base_input_shape``, e.g.
    ``(224, 224, 3)``) asks for. A ``ValueError`` names the Param when neither gives one."""
    if spec.image_size:
        return (int(spec.image_size[0]), int(spec.image_size[1]))
    if base_input_shape is not None and None not in tuple(base_input_shape)[:2]:
        return (int(base_input_shape[0]), int(base_input_shape[1]))
    raise ValueError(
        "The 'imageSize' param of TFClassifier is required when featuresCol holds images "
        "(encoded bytes, Spark image structs or paths of image files): set imageSize=[height, "
        "width], e.g. [64, 64]. Got imageSize=[] instead."
    )
