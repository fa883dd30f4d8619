"""Training data of an image column, driver side: checks, then one compact collect.

An image ``featuresCol`` is one of the kinds the transform engine reads
(:mod:`sparktf.inference._columns`): encoded bytes (``binaryFile``'s ``content``), Spark's image
struct (``spark.read.format("image")``) or a string column of paths or ``file:`` URIs. It
travels as it is: bytes as bytes, structs as their raw pixel bytes and shape, paths as strings
(each task reads the files); never as decoded float vectors. The tasks decode it with
:mod:`sparktf.image` (:mod:`sparktf.training._image_pipeline`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf._image_params import image_size
from sparktf.image import IMAGE_FIELDS
from sparktf.training._checks import DataSpec, check_label_columns, check_labels, label_exprs
from sparktf.training._plans import TrainingData, TrainingSpec

__all__ = ["check_image_specs", "image_kind", "image_training_data"]


def image_kind(dtype: T.DataType) -> str:
    """The engine's name of an image column's kind, or "" for a column of another type."""
    if isinstance(dtype, T.BinaryType):
        return "image_bytes"
    if isinstance(dtype, T.StringType):
        return "image_path"
    if isinstance(dtype, T.StructType) and set(IMAGE_FIELDS[1:]) <= set(dtype.fieldNames()):
        return "image_struct"
    return ""


def _selected(spec: DataSpec, dataset: DataFrame, kind: str) -> list[Any]:
    """``x`` (the image), ``n`` (its path, or null), ``y``, ``v``, and ``size`` (bytes)."""
    column = F.col(spec.features)
    name: Any = F.lit(None).cast("string")
    if kind == "image_path":
        name, size = column, F.length(column)
    elif kind == "image_struct":
        fields = dataset.schema[spec.features].dataType.fieldNames()
        column = F.struct(*[column[f].alias(f) for f in IMAGE_FIELDS if f in fields])
        if "origin" in fields:
            name = F.col(spec.features)["origin"]
        size = F.length(F.col(spec.features)["data"])
    else:
        if "path" in dataset.columns and isinstance(dataset.schema["path"].dataType, T.StringType):
            name = F.col("path")  # binaryFile's
        size = F.length(column)
    columns = [column.alias("x"), name.alias("n"), F.col(spec.label).cast("double").alias("y")]
    if spec.indicator:
        columns.append(F.col(spec.indicator).alias("v"))
    return [*columns, size.alias("size")]


def _check_kind(spec: DataSpec, kind: str) -> None:
    features = f"Column '{spec.features}' (featuresCol) of {spec.stage}"
    if spec.input_shape:
        raise ValueError(
            f"The 'inputShape' param of {spec.stage} is for flat feature vectors; {features} "
            f"holds images, whose shape is imageSize and imageChannels. Got inputShape="
            f"{list(spec.input_shape)}; leave it empty."
        )


@contextlib.contextmanager
def image_training_data(
    spec: DataSpec, dataset: DataFrame, unstaged: str | None = None
) -> Iterator[TrainingData]:
    """Check an image column and its labels with one aggregation job, then collect it once
    (through Arrow) in its compact form; above ``maxBroadcastBytes`` (the sum of the bytes, of
    the structs' pixel data, or of the paths) stage it as Parquet files that every task streams
    (:mod:`sparktf.training._image_streaming`), removed when the context ends."""
    kind = image_kind(dataset.schema[spec.features].dataType)
    _check_kind(spec, kind)
    check_label_columns(spec, dataset)
    selected = dataset.select(*_selected(spec, dataset, kind))
    exprs, bad = label_exprs(spec)
    row = selected.agg(*exprs, F.sum("size").alias("bytes")).first()
    rows, present = int(row["rows"]), int(row["present"])
    if rows == 0:
        raise ValueError(f"{spec.stage} cannot be fitted on an empty DataFrame (0 rows).")
    if present != rows:
        raise ValueError(
            f"Column '{spec.features}' (featuresCol) of {spec.stage} must not contain null "
            f"images. Got {rows - present} null row(s) of {rows}."
        )
    check_labels(spec, selected, row, bad)
    size = int(row["bytes"] or 0) + 8 * rows
    k = spec.class_count
    num_classes = int(k or row["highest"] + 1)
    if size > spec.max_broadcast_bytes and unstaged:
        raise ValueError(
            f"{unstaged} needs training data that fits the broadcast limit "
            f"(maxBroadcastBytes={spec.max_broadcast_bytes} bytes); this image column is "
            f"{size} bytes ({rows} rows of images as they travel, and a label each). Raise the "
            "estimator's maxBroadcastBytes, or tune on a sample of the images."
        )
    if size > spec.max_broadcast_bytes:
        from sparktf.training._staging import staged_training_data

        summary = _Staged(rows=rows, width=0, num_classes=num_classes, float32_bytes=size)
        with staged_training_data(spec, selected.drop("size"), summary) as data:
            yield dataclasses.replace(data, image_kind=kind, image_column=spec.features)
        return
    yield _collect(spec, selected, kind, rows, num_classes)


@dataclasses.dataclass(frozen=True)
class _Staged:
    """What the staging needs to know of the data: rows, classes, bytes (of the images)."""

    rows: int
    width: int
    num_classes: int
    float32_bytes: int


def _collect(spec: DataSpec, selected: DataFrame, kind: str, rows: int, k: int) -> TrainingData:
    """The checked image column, collected once through Arrow as it is (bytes, structs, paths)."""
    table = selected.drop("size").toArrow()
    if table.num_rows != rows:
        raise ValueError(
            f"{spec.stage}: the DataFrame gave {rows} rows when checked and {table.num_rows} when "
            "collected; fit a deterministic DataFrame (cache or checkpoint it first)."
        )
    values = np.empty(rows, dtype=object)
    values[:] = table.column("x").to_pylist()
    names = table.column("n").to_pylist()
    mask = table.column("v").to_numpy(zero_copy_only=False) if spec.indicator else None
    return TrainingData(
        num_features=0,
        num_classes=k,
        x=values,
        y=table.column("y").to_numpy().astype(np.int32),
        val_mask=None if mask is None else mask.astype(bool),
        image_kind=kind,
        image_column=spec.features,
        image_names=names if any(n is not None for n in names) else None,
    )


def check_image_specs(data: TrainingData, specs: Sequence[TrainingSpec], stage: str) -> None:
    """Refuse, before any task, a spec that cannot train on ``data``: an image column without
    ``imageSize``, or staged (above ``maxBroadcastBytes``) with ``numWorkers > 1``, or
    ``imageSize`` for flat features."""
    for spec in specs:
        if not data.image_kind:
            if spec.image_size:
                raise ValueError(
                    f"The 'imageSize' param of {stage} is for image columns (encoded bytes, "
                    "Spark image structs or paths of image files); this featuresCol holds flat "
                    f"feature vectors. Got imageSize={list(spec.image_size)}; leave it empty "
                    "and use inputShape."
                )
            continue
        try:
            image_size(spec)
        except ValueError:
            if data.image_kind != "image_path":
                raise
            raise TypeError(
                f"Column '{data.image_column}' (featuresCol) of {stage} must be an ml Vector or "
                "an array of numbers (array<float> or array<double>), or images: a string column "
                "holds paths of image files, read as such when imageSize=[height, width] is set. "
                "Got string without imageSize instead."
            ) from None
        if spec.num_workers > 1 and data.staged is not None:
            raise ValueError(
                f"The 'numWorkers' param of {stage} trains an image featuresCol "
                f"('{data.image_column}') on several tasks only when the column fits "
                f"maxBroadcastBytes (shared with every worker, which decodes its own shard); "
                f"this one is larger and staged as files. Raise maxBroadcastBytes, pass the "
                "images as a column of file paths every executor can read (a few bytes a row), "
                f"or train in one task (numWorkers=1). Got numWorkers={spec.num_workers}."
            )
