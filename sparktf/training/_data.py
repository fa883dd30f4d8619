"""Training data of TFClassifier, driver side: checks, then one collect into compact numpy blocks.

A fit reads its DataFrame in two steps:

1. one aggregation job (no rows reach the driver) counts the rows and checks the feature vectors
   (nulls, one length), so the data's size is known before anything is collected;
2. the selected columns are collected once through Arrow (``DataFrame.toArrow``) straight into
   one float32 block, with no Python object per row, and checked there (finite values, labels).

Features that are all whole numbers in 0..255 (pixels, as in MNIST) travel to the tasks as
uint8, a quarter of the float32 size; the task turns them back into float32 (lossless).

Data above ``maxBroadcastBytes`` is not collected at all: :mod:`sparktf.training._staging` writes it
as Parquet files that every training task streams.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf._spark import driver_heap_bytes
from sparktf.errors import DriverMemoryError
from sparktf.training._checks import (
    DEFAULT_MAX_BROADCAST_BYTES,
    DataSpec,
    check_label_columns,
    check_labels,
    label_exprs,
)
from sparktf.training._plans import TrainingData

__all__ = [
    "DEFAULT_MAX_BROADCAST_BYTES",
    "DataSpec",
    "check_features_column",
    "collect_training_data",
    "driver_heap_bytes",
    "features_as_float_array",
    "training_data",
]

# The driver holds collected data about twice in its JVM (Arrow batches, then the broadcast
# blocks) and twice in Python; a collect is refused when that would pass this share of the heap.
_HEAP_SHARE = 0.6


@dataclasses.dataclass(frozen=True)
class DataSummary:
    """What the aggregation job found: rows, feature width, number of classes."""

    rows: int
    width: int
    num_classes: int

    @property
    def float32_bytes(self) -> int:
        """Bytes of the collected block: float32 features plus a label per row."""
        return self.rows * (4 * self.width + 8)


def check_features_column(dataset: DataFrame, name: str, stage: str) -> T.DataType:
    """The type of features column ``name``; a clear error if it is missing or not numeric."""
    if name not in dataset.columns:
        raise ValueError(
            f"{stage} expects a features column '{name}' (featuresCol), but the DataFrame has "
            f"only these columns: {dataset.columns}."
        )
    dtype = dataset.schema[name].dataType
    numeric = (T.FloatType, T.DoubleType, T.IntegerType, T.LongType, T.ShortType, T.ByteType)
    ok = isinstance(dtype, VectorUDT) or (
        isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, numeric)
    )
    if not ok:
        raise TypeError(
            f"Column '{name}' (featuresCol) of {stage} must be an ml Vector or an array of "
            f"numbers (array<float> or array<double>). Got {dtype.simpleString()} instead."
        )
    return dtype


def features_as_float_array(dataset: DataFrame, name: str) -> Any:
    """A Column of ``array<float>`` from a Vector or numeric array column (converted on the JVM)."""
    from pyspark.ml.functions import vector_to_array

    if isinstance(dataset.schema[name].dataType, VectorUDT):
        return vector_to_array(F.col(name), "float32")
    return F.col(name).cast(T.ArrayType(T.FloatType()))


def _check_columns(spec: DataSpec, dataset: DataFrame) -> None:
    check_features_column(dataset, spec.features, spec.stage)
    check_label_columns(spec, dataset)


def selected_columns(spec: DataSpec, dataset: DataFrame) -> list[Any]:
    """The columns a fit reads, as ``x`` (array<float>), ``y`` (double) and ``v`` (boolean)."""
    columns = [
        features_as_float_array(dataset, spec.features).alias("x"),
        F.col(spec.label).cast("double").alias("y"),
    ]
    if spec.indicator:
        columns.append(F.col(spec.indicator).alias("v"))
    return columns


def _not_finite(v):
    return v.isNull() | F.isnan(v) | (F.abs(v) == float("inf"))


def summarize(spec: DataSpec, selected: DataFrame) -> DataSummary:
    """One aggregation job over the selected columns checks everything a fit needs of its data
    (no row reaches the driver) and gives the rows, the feature width and the classes."""
    size = F.size("x")
    exprs, bad = label_exprs(spec)
    exprs += [
        F.min(size).alias("shortest"),
        F.max(size).alias("longest"),
        F.sum(F.exists("x", _not_finite).cast("long")).alias("non_finite"),
    ]
    row = selected.agg(*exprs).first()
    rows = int(row["rows"])
    if rows == 0:
        raise ValueError(f"{spec.stage} cannot be fitted on an empty DataFrame (0 rows).")
    width = _check_features(spec, selected, row, size)
    check_labels(spec, selected, row, bad)
    k = spec.class_count
    return DataSummary(rows=rows, width=width, num_classes=int(k or row["highest"] + 1))


def _check_features(spec: DataSpec, selected: DataFrame, row: Any, size: Any) -> int:
    """The feature width, after checking the aggregated ``row``: no nulls, one length, finite."""
    rows, present = int(row["rows"]), int(row["present"])
    features = f"Column '{spec.features}' (featuresCol) of {spec.stage}"
    if present != rows:
        raise ValueError(
            f"{features} must not contain nulls. Got {rows - present} null row(s) of {rows}."
        )
    if row["shortest"] != row["longest"]:
        counts = {
            int(r["n"]): int(r["count"])
            for r in selected.groupBy(size.alias("n")).count().orderBy("n").collect()
        }
        raise ValueError(
            f"{features} must hold vectors of one length. Got lengths {sorted(counts)} (rows per "
            f"length: {counts})."
        )
    width = int(row["longest"])
    if width == 0:
        raise ValueError(f"{features} holds empty vectors.")
    if spec.input_shape and int(np.prod(spec.input_shape)) != width:
        raise ValueError(
            f"The 'inputShape' param of {spec.stage} must have as many elements as each feature "
            f"vector ({width}). Got inputShape={list(spec.input_shape)} "
            f"({int(np.prod(spec.input_shape))} elements) instead."
        )
    if row["non_finite"]:
        raise ValueError(
            f"{features} must hold finite numbers. Got {int(row['non_finite'])} row(s) with NaN, "
            "null or infinite values."
        )
    return width


def check_fits_driver(spec: DataSpec, summary: DataSummary, spark) -> None:
    """Refuse, before the collect, data that the driver's JVM heap cannot hold."""
    heap = driver_heap_bytes(spark)
    need = 2 * summary.float32_bytes
    if heap is None or need <= _HEAP_SHARE * heap:
        return
    raise DriverMemoryError(
        f"{spec.stage}: the training data ({summary.rows} rows x {summary.width} features, "
        f"{_mib(summary.float32_bytes)} as float32) is too large to collect on this driver, "
        f"whose JVM heap is {_mib(heap)} (collecting and broadcasting it needs about "
        f"{_mib(need)}). Either give the driver more memory (spark.driver.memory, e.g. "
        f"--conf spark.driver.memory={max(2, int(np.ceil(need / _HEAP_SHARE / 2**30)))}g, set "
        f"before the session starts), or stage the data as files that each training task "
        f"streams: set maxBroadcastBytes below {summary.float32_bytes} (it is "
        f"{spec.max_broadcast_bytes}; on a cluster also set stagingDir to a folder every "
        "executor reads)."
    )


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def compact_features(x: np.ndarray) -> np.ndarray:
    """``x`` as uint8 when that is lossless (whole numbers in 0..255), else ``x`` itself."""
    if x.size == 0 or x.min() < 0 or x.max() > 255:
        return x
    small = x.astype(np.uint8)
    return small if np.array_equal(small, x) else x


def collect_training_data(
    spec: DataSpec, selected: DataFrame, summary: DataSummary
) -> TrainingData:
    """Collect the checked columns (:func:`selected_columns`) once through Arrow.

    Returns the dict a training task reads: ``x`` (rows x width, float32 or lossless uint8),
    ``y`` (int32 class indices), ``numClasses``, ``numFeatures``, ``valMask`` (bool per row, or
    None).
    """
    table = selected.toArrow()
    n = table.num_rows
    if n != summary.rows:
        raise ValueError(
            f"{spec.stage}: the DataFrame gave {summary.rows} rows when checked and {n} when "
            "collected; fit a deterministic DataFrame (cache or checkpoint it first)."
        )
    x = np.empty((n, summary.width), dtype=np.float32)
    start = 0
    for chunk in table.column("x").chunks:
        rows = len(chunk)
        x[start : start + rows] = chunk.flatten().to_numpy(zero_copy_only=False).reshape(rows, -1)
        start += rows
    y = table.column("y").to_numpy().astype(np.int32)
    mask = table.column("v").to_numpy(zero_copy_only=False) if spec.indicator else None
    del table
    return TrainingData(
        num_features=summary.width,
        num_classes=summary.num_classes,
        x=compact_features(x),
        y=y,
        val_mask=None if mask is None else mask.astype(bool),
    )


@contextlib.contextmanager
def training_data(
    spec: DataSpec, dataset: DataFrame, unstaged: str | None = None
) -> Iterator[TrainingData]:
    """The training data of one fit or fitMultiple call, as the dict the tasks read.

    Data up to ``spec.max_broadcast_bytes`` is collected (and later broadcast); larger data is
    staged as Parquet files (:mod:`sparktf.training._staging`), removed when the context ends.
    ``unstaged`` names a stage that cannot train on staged data: larger data is then refused
    with a ``ValueError`` once its size is known, before anything is staged or collected.
    """
    if spec.features in dataset.columns:
        from sparktf.training._image_data import image_kind, image_training_data

        if image_kind(dataset.schema[spec.features].dataType):
            with image_training_data(spec, dataset, unstaged) as data:
                yield data
            return
    _check_columns(spec, dataset)
    selected = dataset.select(*selected_columns(spec, dataset))
    summary = summarize(spec, selected)
    if summary.float32_bytes > spec.max_broadcast_bytes and unstaged:
        raise ValueError(
            f"{unstaged} needs training data that fits the broadcast limit "
            f"(maxBroadcastBytes={spec.max_broadcast_bytes} bytes); this data is "
            f"{summary.float32_bytes} bytes ({summary.rows} rows of {summary.width} float32 "
            "features and a label). Raise the estimator's maxBroadcastBytes, or tune on a "
            "sample of the data."
        )
    if summary.float32_bytes > spec.max_broadcast_bytes:
        from sparktf.training._staging import staged_training_data

        with staged_training_data(spec, selected, summary) as data:
            yield data
        return
    check_fits_driver(spec, summary, dataset.sparkSession)
    yield collect_training_data(spec, selected, summary)
