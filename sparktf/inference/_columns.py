"""How a DataFrame's columns map to a model's tensors, decided on the driver.

:func:`input_plan` checks one input column's Spark type against the tensor it feeds (numbers,
arrays, ml Vectors, encoded images, paths of image files, Spark image structs, bytes or
strings) and says how the workers convert it; :func:`output_plans` decides each output
column's type; :func:`top_k_plan` checks the labels against the scores they rank;
:func:`path_source` finds the column that names each row in error messages. The stage's Params
are read through its getters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import types as T

from sparktf.image import IMAGE_FIELDS
from sparktf.inference._plan import (
    InputPlan,
    OutputPlan,
    PathSource,
    TopKPlan,
    shape_text,
)

__all__ = ["input_plan", "output_plans", "path_source", "top_k_plan"]

_NUMERIC_SPARK = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.BooleanType,
)


def _is_image_struct(dtype: T.DataType) -> bool:
    return isinstance(dtype, T.StructType) and set(IMAGE_FIELDS[1:]) <= set(dtype.fieldNames())


def _names_images(dtype: T.DataType, per_row: list[int | None] | None) -> bool:
    """Whether a column names image files: strings (paths or file: URIs) feeding an image
    tensor (rank 3 or 2 per row)."""
    return isinstance(dtype, T.StringType) and per_row is not None and len(per_row) in (2, 3)


def _image_kind(dtype: T.DataType) -> str:
    if isinstance(dtype, T.StructType):
        return "image_struct"
    return "image_path" if isinstance(dtype, T.StringType) else "image_bytes"


def _per_row(shape: tuple[int | None, ...] | None, row_mode: bool) -> list[int | None] | None:
    if shape is None:
        return None
    return list(shape) if row_mode else list(shape[1:])


def input_plan(
    stage: Any,
    schema: T.StructType,
    column: str,
    info: Any,
    row_mode: bool,
    checked: dict[str, Any],
) -> InputPlan:
    """How one input column becomes one input tensor (decided on the driver)."""
    name = type(stage).__name__
    if column not in schema.names:
        raise ValueError(
            f"{name} maps column '{column}' to tensor '{info.name}', but the DataFrame has only "
            f"these columns: {schema.names}."
        )
    dtype = schema[column].dataType
    per_row = _per_row(info.shape, row_mode)
    feed = {"column": column, "tensor": info.name, "dtype": info.dtype}
    wanted = f"tensor {info.describe()}"

    if info.dtype == "string":
        if not isinstance(dtype, (T.BinaryType, T.StringType)):
            raise _wrong_type(
                stage,
                column,
                wanted,
                dtype,
                "binary (e.g. encoded image bytes) or string",
            )
        return InputPlan(**feed, kind="raw", shape=tuple(d or 1 for d in per_row or []))
    if isinstance(dtype, T.BinaryType) or _is_image_struct(dtype) or _names_images(dtype, per_row):
        return _image_plan(stage, feed, wanted, dtype, per_row, checked)
    return _numeric_plan(stage, feed, wanted, dtype, per_row)


def _wrong_type(
    stage: Any, column: str, wanted: str, dtype: T.DataType, expected: str
) -> TypeError:
    return TypeError(
        f"Column '{column}' of {type(stage).__name__} feeds {wanted} and must be {expected}. "
        f"Got {dtype.simpleString()} instead."
    )


def _image_plan(
    stage: Any,
    feed: dict[str, Any],
    wanted: str,
    dtype: T.DataType,
    per_row: Any,
    checked: dict[str, Any],
) -> InputPlan:
    """Encoded image bytes, paths of image files or Spark image structs feeding an image
    tensor."""
    name, column = type(stage).__name__, feed["column"]
    if per_row is None or len(per_row) not in (2, 3):
        raise _wrong_type(
            stage,
            column,
            wanted,
            dtype,
            "numeric (an image tensor needs rank 3 [height, width, channels] or rank 2 "
            "[height, width] per row)",
        )
    size = checked_size = stage.getImageSize()
    if not checked_size:
        size = per_row[:2]
    if any(d is None for d in size):
        raise ValueError(
            f"{name} cannot tell the image size for column '{column}': {wanted} has unknown "
            "height or width. Set imageSize=[height, width]."
        )
    channels = per_row[2] if len(per_row) == 3 else 1
    channels = 3 if channels is None else channels
    if channels not in (1, 3):
        raise ValueError(
            f"{name} feeds images to {wanted}, which has {channels} channels; images can be "
            "given 1 or 3 channels."
        )
    return InputPlan(
        **feed,
        kind=_image_kind(dtype),
        size=(int(size[0]), int(size[1])),
        channels=channels,
        squeeze=len(per_row) == 2,
        scaling=checked["imageScaling"],
        order=checked["channelOrder"],
        scaled=bool(stage.getScaledDecode()),
    )


def _numeric_plan(
    stage: Any, feed: dict[str, Any], wanted: str, dtype: T.DataType, per_row: Any
) -> InputPlan:
    """Numbers, arrays of numbers or ml Vectors reshaped to the tensor's per-row shape."""
    name, column = type(stage).__name__, feed["column"]
    is_array = isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _NUMERIC_SPARK)
    if not (is_array or isinstance(dtype, (VectorUDT, *_NUMERIC_SPARK))):
        raise _wrong_type(
            stage,
            column,
            wanted,
            dtype,
            "numeric: a number, an array of numbers, an ml Vector, or for image tensors "
            "encoded image bytes, a Spark image struct or a string path of an image file",
        )
    shape = stage.getInputShapes().get(column)
    if shape is None:
        shape = per_row
        if shape is None or sum(d is None for d in shape) > 1:
            raise ValueError(
                f"{name} cannot reshape rows of column '{column}' for {wanted}: its shape has "
                "unknown sizes. Set inputShapes={column: [...]} to the shape of one row."
            )
    elif per_row is not None and (
        len(shape) != len(per_row)
        or any(d is not None and d != s for d, s in zip(per_row, shape, strict=True))
    ):
        raise ValueError(
            f"{name} reshapes rows of column '{column}' to inputShapes {shape}, but {wanted} "
            f"expects rows of shape {shape_text(per_row)}."
        )
    # float32 tensors fed from arrays of other numbers: cast on the JVM, so that half the bytes
    # (of doubles) cross to Python and the worker has no array to convert
    to_float = (
        is_array and feed["dtype"] == "float32" and not isinstance(dtype.elementType, T.FloatType)
    )
    return InputPlan(
        **feed,
        kind="numeric",
        shape=tuple(shape),
        vector=isinstance(dtype, VectorUDT),
        cast="array<float>" if to_float else None,
    )


def output_plans(stage: Any, out_infos: list, row_mode: bool) -> list[OutputPlan]:
    name = type(stage).__name__
    requested = stage.getOutputTypes()
    known = {col for _, col in out_infos}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise ValueError(
            f"The 'outputTypes' param of {name} names column(s) {unknown} that are not output "
            f"columns; the output columns are {sorted(known)}."
        )
    plans = []
    for info, column in out_infos:
        shape = info.shape
        if row_mode and shape is not None and len(shape) >= 1 and shape[0] == 1:
            per_row: list[int | None] | None = list(shape[1:])
        elif row_mode:
            per_row = None if shape is None else list(shape)
        else:
            per_row = None if shape is None else list(shape[1:])
        want = requested.get(column, "auto").lower()
        scalar = per_row == [] or (per_row is not None and all(d == 1 for d in per_row))
        if want != "auto":
            if info.dtype in ("string", "bool"):
                raise ValueError(
                    f"Output column '{column}' of {name} comes from tensor {info.describe()}, "
                    f"which can only be written as 'auto'. Got outputTypes {want!r}."
                )
            kind = want
        elif info.dtype in ("string", "bool") or info.dtype.startswith(("int", "uint")):
            base = {"string": "string", "bool": "boolean"}.get(info.dtype, "long")
            kind = base if scalar else f"array_{base}"
        else:
            kind = "double" if scalar else "array"
        if kind == "double" and per_row is not None and not scalar:
            raise ValueError(
                f"Output column '{column}' of {name} cannot be a double: tensor "
                f"{info.describe()} gives rows of shape {shape_text(per_row)}."
            )
        row_shape = None if per_row is None else tuple(per_row)
        plans.append(OutputPlan(column=column, tensor=info.name, kind=kind, shape=row_shape))
    return plans


def top_k_plan(stage: Any, outputs: list[OutputPlan], labels: list[str]) -> TopKPlan:
    name = type(stage).__name__
    scores = stage.getScoresCol()
    columns = [o.column for o in outputs]
    if not scores:
        if len(outputs) != 1:
            raise ValueError(
                f"{name} has {len(outputs)} output columns {columns}; set scoresCol to the one "
                "whose scores are ranked for the top-K labels."
            )
        scores = columns[0]
    if scores not in columns:
        raise ValueError(
            f"The 'scoresCol' param of {name} must be one of the output columns {columns}. Got "
            f"{scores!r} instead."
        )
    index = columns.index(scores)
    item = outputs[index]
    shape = item.shape
    if item.kind not in ("array", "vector", "array_long"):
        raise ValueError(
            f"{name} ranks scores of column '{scores}', which must hold several numbers per row. "
            f"Got rows of shape {None if shape is None else list(shape)} instead."
        )
    if shape is not None and None not in shape and int(np.prod(shape)) != len(labels):
        raise ValueError(
            f"{name} has {len(labels)} labels, but column '{scores}' (tensor '{item.tensor}') "
            f"holds {int(np.prod(shape))} scores per row; give one label per score."
        )
    return TopKPlan(index=index, labels=tuple(labels), k=stage.getTopK(), column=scores)


def path_source(stage: Any, schema: T.StructType, inputs: list[InputPlan]) -> PathSource | None:
    path = stage.getPathCol()
    if path and path in schema.names and isinstance(schema[path].dataType, T.StringType):
        return PathSource(path)
    for item in inputs:
        struct = schema[item.column].dataType
        if item.kind == "image_struct" and "origin" in struct.fieldNames():
            return PathSource(item.column, field="origin")
        if item.kind == "image_path":
            return PathSource(item.column)
    return None
