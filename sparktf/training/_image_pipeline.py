"""An image column inside a training task: decoded by :mod:`sparktf.image` in ``tf.data``.

Each row travels compact (encoded bytes, a Spark image struct, or a path the task reads) and is
decoded, turned upright, converted to ``imageChannels`` and resized to ``imageSize`` by
:func:`decode_training_image`, the same :mod:`sparktf.image` calls the transform engine makes
(:func:`sparktf.inference._rows.row_value`), inside a parallel ``tf.data`` map. The network
gets 0..255 pixels as float32 and scales them itself (:mod:`sparktf.training._image_layers`).
A row that cannot be decoded fails the training with a ``ValueError`` naming the row (and its
path): the cheap checks of :func:`check_images` run on every row before the first batch.
TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from sparktf._image_params import image_size
from sparktf.image import decode_image, read_image_file, spark_image_to_array
from sparktf.training._plans import TrainingData, TrainingSpec

__all__ = [
    "check_images",
    "decode_rows",
    "decode_training_image",
    "image_datasets",
    "image_shape",
    "index_batches",
    "pixel_batches",
    "split_rows",
]


def image_shape(spec: TrainingSpec) -> tuple[int, int, int]:
    """``(height, width, channels)`` of the network's input for ``spec``."""
    return (*image_size(spec), int(spec.image_channels))


def _remote(location: str) -> bytes:
    from sparktf.inference._rows import _read_remote

    return _read_remote(location)


def decode_training_image(kind: str, value: Any, size: tuple[int, int], channels: int):
    """One row of an image column as ``height x width x channels`` uint8 pixels: the decode of
    the transform engine (no reduced-scale JPEG decoding). Raises ``InvalidImageError``."""
    if kind == "image_struct":
        return spark_image_to_array(value, size, channels)
    if kind == "image_path":
        value = read_image_file(value, _remote)
    return decode_image(value, size, channels)


def _row_error(data: TrainingData, index: int | None, reason: str, name: Any = None) -> ValueError:
    """The error of a row (its ``index``, or None in a stream) that cannot be decoded."""
    names = data.image_names
    if name is None and names is not None and index is not None:
        name = names[index]
    where = f" ({name})" if name else ""
    row = "a row" if index is None else f"row {index}"
    return ValueError(
        f"TFClassifier cannot train on {row}{where} of image column '{data.image_column}': {reason}"
    )


def _header_problem(kind: str, value: Any) -> str | None:
    """What a cheap look (the header, or the struct's sizes) finds wrong with a row."""
    if value is None:
        return "the image is null"
    if kind == "image_struct":
        try:
            need = int(value["height"]) * int(value["width"]) * int(value["nChannels"])
            ok = value["data"] is not None and need > 0 and len(value["data"]) == need
        except (KeyError, TypeError, ValueError):
            ok = False
        return None if ok else "the image struct holds no pixels (an undecodable file)"
    from PIL import Image

    try:
        if kind == "image_path":
            from sparktf.image import _local_path

            local = _local_path(value)
            if local is None:
                return None  # a remote file: read when decoded
            source: Any = local
        else:
            source = io.BytesIO(bytes(value))
        with Image.open(source):
            return None
    except Exception as exc:
        return f"cannot decode image: {str(exc).split(' <')[0] or type(exc).__name__}"


def check_images(data: TrainingData, indices: Any = None) -> None:
    """Raise the error of the first row (of ``indices``, default all) whose header (or struct)
    cannot be read."""
    for index in range(len(data.x)) if indices is None else (int(i) for i in indices):
        problem = _header_problem(data.image_kind, data.x[index])
        if problem is not None:
            raise _row_error(data, index, problem)


def split_rows(spec: TrainingSpec, data: TrainingData, seed: int):
    """Training and held-out row indices (as the flat path's ``_split`` draws them)."""
    rows = np.arange(len(data.y))
    if data.val_mask is not None:
        return rows[~data.val_mask], rows[data.val_mask]
    if spec.validation_split <= 0:
        return rows, None
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val = max(1, round(len(rows) * spec.validation_split))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def decode_rows(data: TrainingData, indices: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """The rows ``indices`` of ``data``'s image column as uint8 pixels of ``shape`` (height,
    width, channels); a row that cannot be decoded raises the error naming it."""
    images = np.empty((len(indices), *shape), dtype=np.uint8)
    for row, index in enumerate(indices):
        i = int(index)
        try:
            images[row] = decode_training_image(data.image_kind, data.x[i], shape[:2], shape[2])
        except ValueError as exc:  # InvalidImageError
            raise _row_error(data, i, str(exc)) from None
    return images


def pixel_batches(data: TrainingData, shape: tuple[int, int, int]):
    """A function of a batch of row indices (an int64 tensor) giving their decoded pixels as
    float32 0..255, for a ``tf.data`` map: the one decode of training, one Python call per
    batch (a call into the decode costs about as much as decoding a small image, so a call per
    image made the input pipeline the bottleneck)."""
    import tensorflow as tf

    def load(indices):
        return decode_rows(data, indices, shape)

    def pixels(indices):
        images = tf.numpy_function(load, [indices], tf.uint8, stateful=False)
        images.set_shape((None, *shape))
        return tf.cast(images, tf.float32)

    return pixels


def index_batches(
    data: TrainingData,
    pixels,
    indices: Any,
    batch: int,
    shuffle_seed: int | None = None,
    with_labels: bool = True,
    drop_remainder: bool = False,
):
    """The rows ``indices`` of ``data`` as a ``tf.data`` pipeline of ``batch``-row batches of
    ``(pixels, labels)`` (or pixels alone), decoded in parallel by ``pixels``
    (:func:`pixel_batches`); shuffled anew each pass with a ``shuffle_seed``."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    labels = tf.constant(np.asarray(data.y, dtype=np.int32))
    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch, drop_remainder=drop_remainder)
    if with_labels:
        dataset = dataset.map(lambda i: (pixels(i), tf.gather(labels, i)), auto)
    else:
        dataset = dataset.map(pixels, auto)
    return dataset.prefetch(auto)


def image_datasets(spec: TrainingSpec, data: TrainingData, seed: int, order_seed: int):
    """What ``model.fit`` reads, the number of training rows, and the pixel batches that adapt
    ``standardize`` (None for another scaling)."""
    check_images(data)
    pixels = pixel_batches(data, image_shape(spec))
    size = spec.batch_size
    train, held = split_rows(spec, data, seed)
    inputs = {
        "x": index_batches(data, pixels, train, size, shuffle_seed=order_seed),
        "validation_data": None if held is None else index_batches(data, pixels, held, size),
        "shuffle": False,
    }
    standardize = spec.image_scaling == "standardize"
    adapt = index_batches(data, pixels, train, size, with_labels=False) if standardize else None
    return inputs, len(train), adapt
