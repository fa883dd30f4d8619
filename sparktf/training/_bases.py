"""Pretrained bases on the driver: read each ``baseModel`` once, check it, ship it with the data.

:func:`read_bases` reads the ``.keras`` file of every distinct ``baseModel`` of a call through
Spark's filesystems (any path Spark reads, as ``TFGraphTransformer``'s ``modelPath``) and checks
it without TensorFlow, from the file's ``config.json``: a Keras model, ``featureLayer`` one of
its layers, one input. :func:`with_bases` then checks each base's input against the collected
features, resolves ``inputShape`` to the base's input shape and puts the bytes into the
:class:`~sparktf.training._plans.TrainingData`, which is shared once per call; the specs carry
only the path. Every error here comes before any training job.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from sparktf.training._plans import TrainingData, TrainingSpec

__all__ = ["BaseFile", "read_bases", "with_bases"]

_LAYERS_SHOWN = 20
_WHAT = "The 'baseModel' param of TFClassifier"


@dataclasses.dataclass(frozen=True, eq=False)
class BaseFile:
    """A base's bytes, its layer names and its input shape (None where unknown or variable)."""

    content: bytes
    names: tuple[str, ...]
    input_shape: tuple[int, ...] | None


def _read(spark: Any, path: str) -> bytes:
    from sparktf._spark import list_files, path_status, read_bytes

    status = path_status(spark, path)
    if status is None:
        raise ValueError(f"{_WHAT} must name an existing .keras file. No file at {path!r}.")
    if status == "dir" and any(n.endswith("saved_model.pb") for n in list_files(spark, path)):
        raise ValueError(
            f"{_WHAT} must be a .keras file; {path!r} is a TensorFlow SavedModel folder, whose "
            "layers cannot be cut or fine-tuned. Load the network in Keras and save it with "
            "model.save('base.keras')."
        )
    return read_bytes(spark, path)


def _input_shape(config: dict) -> tuple[int, ...] | None:
    """The base's one input shape (without the batch axis) from its ``config.json``."""
    layers = config.get("config", {}).get("layers", []) or []
    shapes = [
        layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
        for layer in layers
        if layer.get("class_name") == "InputLayer" and isinstance(layer.get("config"), dict)
    ]
    if not shapes:
        shapes = [(config.get("build_config") or {}).get("input_shape")]
    if len(shapes) > 1:
        raise ValueError(f"{_WHAT} must hold a network with one input. Got {len(shapes)} inputs.")
    shape = shapes[0]
    if not shape or any(d is None for d in shape[1:]):
        return None
    return tuple(int(d) for d in shape[1:])


def describe(path: str, content: bytes) -> BaseFile:
    """The layers and input of the ``.keras`` file ``content``; ValueError if it is none."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            config = json.loads(archive.read("config.json"))
        layers = config["config"]["layers"]
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{_WHAT} must be a .keras file (a Keras model saved with model.save('base.keras')). "
            f"{path!r} is not one ({type(exc).__name__}: {exc})."
        ) from None
    names = tuple(str(layer.get("config", {}).get("name", "")) for layer in layers)
    return BaseFile(content, names, _input_shape(config))


def read_bases(spark: Any, specs: Sequence[TrainingSpec]) -> dict[str, BaseFile]:
    """Each distinct ``baseModel`` of ``specs``, read and checked once (see the module)."""
    bases: dict[str, BaseFile] = {}
    for spec in specs:
        path = spec.base_model
        if path and path not in bases:
            bases[path] = describe(path, _read(spark, path))
        if path and spec.feature_layer and spec.feature_layer not in bases[path].names:
            shown = ", ".join(f"'{n}'" for n in bases[path].names[-_LAYERS_SHOWN:])
            raise ValueError(
                f"The 'featureLayer' param of TFClassifier must name a layer of baseModel "
                f"{path!r}. Got {spec.feature_layer!r}; its last layers are: {shown}."
            )
    return bases


def _resolved_image(spec: TrainingSpec, base: BaseFile) -> TrainingSpec:
    """``spec`` with ``imageSize`` the base's input size (for an image column), checked
    against the base's input: an image of ``imageChannels`` channels."""
    shape = base.input_shape
    if shape is None:
        return spec  # a variable input size: imageSize decides, the task checks
    if len(shape) != 3:
        raise ValueError(
            f"{_WHAT} ({spec.base_model!r}) takes inputs of shape {list(shape)}, not images "
            "(height, width, channels), so it cannot be fine-tuned on an image column."
        )
    size, channels = tuple(shape[:2]), shape[2]
    if spec.image_size and tuple(spec.image_size) != size:
        raise ValueError(
            f"The 'imageSize' param of TFClassifier must agree with baseModel "
            f"{spec.base_model!r}, whose input is {list(size)} pixels (or be empty to take it). "
            f"Got imageSize={list(spec.image_size)} instead."
        )
    if spec.image_channels != channels:
        raise ValueError(
            f"The 'imageChannels' param of TFClassifier must be the {channels} channel(s) of "
            f"baseModel {spec.base_model!r}'s input. Got imageChannels={spec.image_channels} "
            "instead."
        )
    return dataclasses.replace(spec, image_size=size)


def _resolved(spec: TrainingSpec, base: BaseFile, data: TrainingData) -> TrainingSpec:
    """``spec`` with ``inputShape`` (flat features) or ``imageSize`` (an image column) the
    base's input shape, checked against the features."""
    if data.image_kind:
        return _resolved_image(spec, base)
    width = data.num_features
    shape = base.input_shape
    given = tuple(spec.input_shape)
    if shape is None:
        return spec  # a variable input size: inputShape (if any) decides, the task checks
    if given and given != shape:
        raise ValueError(
            f"The 'inputShape' param of TFClassifier must agree with baseModel "
            f"{spec.base_model!r}, whose input shape is {list(shape)} (or be empty). Got "
            f"inputShape={list(given)} instead."
        )
    if int(np.prod(shape)) != width:
        raise ValueError(
            f"{_WHAT} ({spec.base_model!r}) takes inputs of shape {list(shape)} "
            f"({int(np.prod(shape))} values), which the features cannot feed: each feature "
            f"vector has {width} values."
        )
    return dataclasses.replace(spec, input_shape=shape)


def with_bases(
    data: TrainingData, specs: Sequence[TrainingSpec], bases: dict[str, BaseFile]
) -> tuple[TrainingData, list[TrainingSpec]]:
    """The data with the bytes of its specs' bases, and the specs with their input shapes."""
    if not bases:
        return data, list(specs)
    resolved = [
        _resolved(spec, bases[spec.base_model], data) if spec.base_model else spec for spec in specs
    ]
    used = {spec.base_model for spec in specs if spec.base_model}
    content = {path: bases[path].content for path in used}
    return dataclasses.replace(data, bases=content), resolved
