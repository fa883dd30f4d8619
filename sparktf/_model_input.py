"""What a fitted TFClassificationModel takes as input: its features column at transform, and
the one value of ``predict``/``predictRaw``/``predictProbability``.

A model trained on flat features takes ml Vectors or numeric arrays of its ``numFeatures``. A
model trained on an image column remembers its image plan (``kind``, ``size``, ``channels``)
and takes any of the three image kinds, decoded as the training decoded them
(:func:`sparktf.training._image_pipeline.decode_training_image`, the same :mod:`sparktf.image`
calls as the transform engine): encoded bytes, Spark image structs, or paths of image files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.ml.linalg import Vector
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparktf.training._data import check_features_column
from sparktf.training._image_data import image_kind

__all__ = ["feature_row", "trained_input", "transform_input"]


def transform_input(model: Any, dataset: DataFrame, features: str) -> dict[str, Any] | None:
    """Check the features column against ``model``; the image plan of its transform (None for
    flat features)."""
    stage = type(model).__name__
    image = model._image
    if image is None:
        check_features_column(dataset, features, stage)
        return None
    if features not in dataset.columns:
        raise ValueError(
            f"{stage} expects a features column '{features}' (featuresCol), but the DataFrame "
            f"has only these columns: {dataset.columns}."
        )
    dtype = dataset.schema[features].dataType
    kind = image_kind(dtype)
    if not kind:
        raise TypeError(
            f"Column '{features}' (featuresCol) of {stage} must hold images, as the model was "
            "trained on: encoded image bytes (binary), a Spark image struct or a string path of "
            f"an image file. Got {dtype.simpleString()} instead."
        )
    path = None
    if kind == "image_path":
        path = (features, None)
    elif kind == "image_struct" and "origin" in dtype.fieldNames():
        path = (features, "origin")
    elif "path" in dataset.columns and isinstance(dataset.schema["path"].dataType, T.StringType):
        path = ("path", None)  # binaryFile's
    return {**image, "kind": kind, "path": path}


def feature_row(model: Any, value: Any) -> np.ndarray:
    """One value for the single-row ``predict*`` methods, as a batch of one row: a feature
    vector of the model's length, or for an image model, encoded image bytes."""
    image = model._image
    if image is not None:
        from sparktf.training._image_pipeline import decode_training_image

        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"{type(model).__name__} was trained on images and predicts one image given as "
                f"its encoded bytes (e.g. open(path, 'rb').read()). Got {type(value).__name__} "
                "instead."
            )
        size, channels = tuple(image["size"]), int(image["channels"])
        pixels = decode_training_image("image_bytes", value, size, channels)
        return pixels[None].astype(np.float32)
    arr = np.asarray(value.toArray() if isinstance(value, Vector) else value, np.float32)
    if arr.shape != (model._num_features,):
        raise ValueError(
            f"TFClassificationModel expects feature vectors of length {model._num_features}. "
            f"Got length {arr.size} instead."
        )
    return arr[None, :]


def trained_input(result: dict[str, Any], data: Any) -> tuple[dict[str, Any] | None, int]:
    """The image plan of a trained model (None for flat features) and its number of features
    (height x width x channels for images)."""
    if not result.get("image"):
        return None, int(data.num_features)
    image = {**result["image"], "kind": data.image_kind}
    return image, int(np.prod([*image["size"], image["channels"]]))
