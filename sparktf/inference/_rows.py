"""The worker side of a transform's inputs: an Arrow batch's columns as the model's arrays.

:func:`column_values` turns a column into Python values, :func:`numeric_block` and
:func:`image_struct_block` convert a whole chunk at once (the fast paths: numbers, arrays, ml
Vectors, Spark image structs of the model's size), and :func:`row_values` converts row by row
what they leave (encoded images, image files named by path, strings, nulls, a size to report),
marking the rows that cannot be fed as :class:`Invalid`. TensorFlow is imported only inside
functions.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pandas as pd

from sparktf.image import (
    IMAGE_FIELDS,
    OPENCV_MODES,
    decode_image,
    prepare_pixels,
    read_image_file,
    spark_image_to_array,
)
from sparktf.inference._plan import InputPlan, TransformPlan, shape_text

__all__ = [
    "Invalid",
    "column_values",
    "image_struct_block",
    "image_struct_parts",
    "numeric_block",
    "numpy_dtype",
    "row_value",
    "row_values",
]

_IMAGE_DIMS = list(IMAGE_FIELDS[1:5])  # height, width, nChannels, mode


#: Kinds of input holding images; those decoded row by row (from bytes, or files read first).
_IMAGES = ("image_bytes", "image_path", "image_struct")
_ENCODED = ("image_bytes", "image_path")


def _read_remote(location: str) -> bytes:
    """A file named by a URI of a file system other than the local one, read by TensorFlow's
    file systems (``gs://``; ``hdfs://`` and others where TensorFlow is set up for them)."""
    from sparktf._tf import configure_tensorflow

    with configure_tensorflow().io.gfile.GFile(location, "rb") as handle:
        return handle.read()


class Invalid(Exception):
    """A row whose value cannot be fed (null, undecodable image)."""


def numpy_dtype(name: str) -> Any:
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow().as_dtype(name).as_numpy_dtype


def _shape_error(plan: TransformPlan, item: InputPlan, got: Any) -> ValueError:
    shape = item.shape
    size = int(np.prod([d for d in shape if d is not None])) if shape else 1
    return ValueError(
        f"{plan.stage}: shape mismatch for column '{item.column}' feeding tensor "
        f"'{item.tensor}': expected rows of shape {shape_text(shape)} ({size} values), got "
        f"{got}."
    )


def row_value(plan: TransformPlan, item: InputPlan, value: Any, dtype: Any) -> np.ndarray:
    """One row of an input column as an array of the tensor's per-row shape."""
    kind = item.kind
    if value is None or (kind == "image_struct" and _struct_is_null(value)):
        raise Invalid("the value is null")
    if kind in _IMAGES:
        size = (item.size[0], item.size[1])
        try:
            if kind == "image_path":
                value = read_image_file(value, _read_remote)
            if kind != "image_struct":
                pixels = decode_image(value, size, item.channels, item.scaled)
            else:
                pixels = spark_image_to_array(value, size, item.channels)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        prepared = prepare_pixels(pixels, item.scaling, item.order, dtype)
        return prepared[:, :, 0] if item.squeeze else prepared
    if kind == "raw":
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return np.array(data, dtype=object).reshape(item.shape)
    array = np.asarray(value, dtype=dtype)
    shape = item.shape
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    if None in shape:
        if known == 0 or array.size % known:
            raise _shape_error(plan, item, f"a row of {array.size} values")
        shape = [array.size // known if d is None else d for d in shape]
    elif array.size != known:
        raise _shape_error(plan, item, f"a row of {array.size} values")
    return array.reshape(shape)


def row_values(
    plan: TransformPlan, item: InputPlan, values: list[Any], dtype: Any
) -> list[np.ndarray | Invalid]:
    """:func:`row_value` of each value, or the :class:`Invalid` it raised. Encoded images are
    decoded by a small thread pool: Pillow releases the GIL while it decodes and resizes, so a
    task's images decode on every core the task has."""

    def one(value: Any) -> np.ndarray | Invalid:
        try:
            return row_value(plan, item, value, dtype)
        except Invalid as exc:
            return exc

    pool = _decode_pool() if item.kind in _ENCODED and len(values) > 1 else None
    return list(pool.map(one, values)) if pool else [one(v) for v in values]


_POOL_LOCK = threading.Lock()
_POOL: list[Any] = []


def _decode_pool() -> Any:
    """The Python worker's image decoding threads (``SPARKTF_DECODE_THREADS``, default the
    number of cores up to 4), or None for decoding in the task's own thread (1 or 0)."""
    with _POOL_LOCK:
        if not _POOL:
            from concurrent.futures import ThreadPoolExecutor

            default = min(4, os.cpu_count() or 1)
            try:
                threads = int(os.environ.get("SPARKTF_DECODE_THREADS", default))
            except ValueError:
                threads = default
            pool = ThreadPoolExecutor(threads, "sparktf-decode") if threads > 1 else None
            _POOL.append(pool)
        return _POOL[0]


def numeric_block(item: InputPlan, values: list[Any], dtype: Any) -> np.ndarray | None:
    """A chunk of a numeric column as one array ``(rows, *shape)``, or None when a row needs a
    closer look (a null, or a size that does not fit the shape)."""
    n = len(values)
    if not n or any(v is None for v in values):
        return None
    try:
        first = values[0]
        block = np.asarray(np.stack(values) if isinstance(first, np.ndarray) else values, dtype)
    except (ValueError, TypeError):
        return None
    shape = item.shape
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    per_row = block.size // n
    if None in shape:
        if known == 0 or per_row % known:
            return None
    elif per_row != known or block.size != n * known:
        return None
    return block.reshape([n, *(-1 if d is None else d for d in shape)])


# What image_struct_parts splits a batch of image structs into: missing rows, sizes, bytes.
_StructParts = tuple[np.ndarray, np.ndarray, list[Any]]


def image_struct_parts(frame: pd.DataFrame) -> _StructParts | None:
    """Split a batch of Spark image structs once: which rows lack a field (a null struct or
    field), their sizes ``(rows, 4)`` (height, width, nChannels, mode; NaN where missing) and
    their pixel bytes. None when the frame does not have the image struct's fields."""
    try:
        data = frame["data"]
        sizes = frame[_IMAGE_DIMS].to_numpy(dtype=np.float64)
        missing = data.isna().to_numpy() | np.isnan(sizes).any(axis=1)
        return missing, sizes, data.tolist()
    except (KeyError, TypeError, ValueError):
        return None


def image_struct_block(
    item: InputPlan, parts: _StructParts | None, start: int, stop: int, dtype: Any
) -> np.ndarray | None:
    """Rows ``start:stop`` of a batch of Spark image structs (split by :func:`image_struct_parts`)
    as one prepared array ``(rows, height, width[, channels])``, or None when a row needs the
    per-row path: a null, another size (resizing), another mode, or a conversion between colour
    and grayscale. The result equals the per-row path's."""
    if parts is None or stop <= start or parts[0][start:stop].any():
        return None
    dims, data = parts[1][start:stop].astype(np.int64), parts[2][start:stop]
    first = dims[0]
    height, width = item.size
    if not (dims == first).all() or (first[0], first[1]) != (height, width):
        return None
    n_channels, mode = int(first[2]), int(first[3])
    if OPENCV_MODES.get(mode) != n_channels or (n_channels == 1) != (item.channels == 1):
        return None
    size = height * width * n_channels
    if any(len(d) != size for d in data):
        return None
    pixels = np.frombuffer(b"".join(data), dtype=np.uint8).reshape(len(data), height, width, -1)
    if n_channels > 1:
        pixels = pixels[..., 2::-1]  # BGR(A) -> RGB
    prepared = prepare_pixels(pixels, item.scaling, item.order, dtype)
    return prepared[..., 0] if item.squeeze else prepared


def _struct_is_null(value: Any) -> bool:
    try:
        return all(v is None or (isinstance(v, float) and np.isnan(v)) for v in value.values())
    except AttributeError:
        return False


def column_values(column: Any) -> list[Any]:
    if isinstance(column, pd.DataFrame):  # a struct column (Spark image)
        records = column.to_dict("records")
        return [None if _struct_is_null(r) else r for r in records]
    values = column.to_numpy(dtype=object)
    return [None if v is None or v is pd.NA else v for v in values]
