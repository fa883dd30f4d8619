"""What every kind of training data is checked for, driver side: the columns a fit reads
(:class:`DataSpec`), and its labels and validation indicator, checked by one aggregation job
with the features' own checks (:mod:`sparktf.training._data` for flat features,
:mod:`sparktf.training._image_data` for image columns).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = [
    "DEFAULT_MAX_BROADCAST_BYTES",
    "DataSpec",
    "check_label_columns",
    "check_labels",
    "label_exprs",
]

DEFAULT_MAX_BROADCAST_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which columns a fit reads, and what it knows of them before reading."""

    stage: str
    features: str
    label: str
    indicator: str | None = None
    class_count: int = 0
    input_shape: tuple[int, ...] = ()
    max_broadcast_bytes: int = DEFAULT_MAX_BROADCAST_BYTES
    staging_dir: str = ""
    seed: int = 0
    workers: int = 1  # staged data is written in at least this many files, one per worker


def check_label_columns(spec: DataSpec, dataset: DataFrame) -> None:
    """Check the label column and the validation indicator column of ``spec``, if any."""
    if spec.label not in dataset.columns:
        raise ValueError(
            f"{spec.stage} expects a label column '{spec.label}' (labelCol), but the DataFrame "
            f"has only these columns: {dataset.columns}."
        )
    label_type = dataset.schema[spec.label].dataType
    if not isinstance(label_type, T.NumericType):
        raise TypeError(
            f"Column '{spec.label}' (labelCol) of {spec.stage} must be numeric with integer "
            f"values 0..K-1. Got {label_type.simpleString()} instead."
        )
    if spec.indicator:
        if spec.indicator not in dataset.columns:
            raise ValueError(
                f"{spec.stage} expects a validation indicator column '{spec.indicator}' "
                f"(validationIndicatorCol), but the DataFrame has only these columns: "
                f"{dataset.columns}."
            )
        if not isinstance(dataset.schema[spec.indicator].dataType, T.BooleanType):
            raise TypeError(
                f"Column '{spec.indicator}' (validationIndicatorCol) of {spec.stage} must be "
                f"boolean. Got {dataset.schema[spec.indicator].dataType.simpleString()} instead."
            )


def label_exprs(spec: DataSpec) -> tuple[list[Any], tuple[Any, Any]]:
    """The aggregations of the rows (``rows``, ``present`` features), labels (``y``) and
    indicator (``v``) that :func:`check_labels` reads, and the conditions of a non-integer
    label and of a NaN or infinite one."""
    y = F.col("y")
    # NaN and infinity first: in Spark SQL NaN equals NaN and sorts above every number, so
    # neither passes or fails the integer check below as it would in Python.
    not_finite_label = F.isnan(y) | (F.abs(y) == float("inf"))
    bad_label = ~not_finite_label & ((y != F.round(y)) | (y < 0))
    exprs = [
        F.count(F.lit(1)).alias("rows"),
        F.count("x").alias("present"),
        F.count(y).alias("labels"),
        F.min(y).alias("lowest"),
        F.max(y).alias("highest"),
        F.sum(bad_label.cast("long")).alias("non_int"),
        F.sum(not_finite_label.cast("long")).alias("non_finite_labels"),
    ]
    if spec.indicator:
        exprs += [F.count("v").alias("marked"), F.sum(F.col("v").cast("long")).alias("held")]
    return exprs, (bad_label, not_finite_label)


def check_labels(spec: DataSpec, selected: DataFrame, row: Any, bad: tuple[Any, Any]) -> None:
    """Check the labels and the indicator of the aggregated ``row`` (:func:`label_exprs`)."""
    _check_labels(spec, selected, row, bad)
    if spec.indicator:
        _check_indicator(spec, row)


def _check_labels(spec: DataSpec, selected: DataFrame, row: Any, bad: tuple[Any, Any]) -> None:
    """Check the aggregated ``row``'s labels: no nulls, finite, class indices, 2 classes or more
    (``bad``: the conditions of a non-integer label and of a NaN or infinite one)."""
    bad_label, not_finite = bad
    rows = int(row["rows"])
    label = f"Column '{spec.label}' (labelCol) of {spec.stage}"
    if row["labels"] != rows:
        raise ValueError(
            f"{label} must not contain nulls. Got {rows - int(row['labels'])} null label(s) of "
            f"{rows}."
        )
    if row["non_finite_labels"]:
        found = selected.where(not_finite).select("y").distinct().limit(3).collect()
        values = ", ".join(sorted(repr(float(r[0])) for r in found))
        raise ValueError(
            f"{label} must hold finite integer class indices 0..K-1. Got "
            f"{int(row['non_finite_labels'])} NaN or infinite label(s): {values}."
        )
    if row["non_int"]:
        bad = selected.where(bad_label).select("y").first()[0]
        raise ValueError(
            f"{label} must hold integer class indices 0..K-1. Got {float(bad)!r} (and "
            f"{int(row['non_int']) - 1} more invalid label(s))."
        )
    if row["lowest"] == row["highest"]:
        raise ValueError(
            f"{label} must hold at least 2 classes to train a classifier. Got a single class: "
            f"{int(row['lowest'])}."
        )
    k = spec.class_count
    if k and row["highest"] >= k:
        raise ValueError(
            f"{label} must hold labels in [0, {k}) because classCount={k}. Got label "
            f"{int(row['highest'])}."
        )


def _check_indicator(spec: DataSpec, row: Any) -> None:
    """Check the aggregated ``row``'s validation indicator: no nulls, some rows but not all."""
    rows = int(row["rows"])
    indicator = f"Column '{spec.indicator}' (validationIndicatorCol) of {spec.stage}"
    if row["marked"] != rows:
        raise ValueError(f"{indicator} must not contain nulls.")
    held = int(row["held"] or 0)
    if held in (0, rows):
        raise ValueError(
            f"{indicator} must mark some rows, but not all, as validation rows. Got {held} "
            f"of {rows}."
        )
