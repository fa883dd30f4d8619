"""The transform's UDF and its columns: the one path from a plan to Spark for both stages.

:func:`ship_model` sends the model's bytes to the executors once per session and model,
:func:`make_udf` wraps :func:`sparktf.inference._worker.predict_batches` in a pandas UDF,
:func:`udf_arguments` gives the Spark expressions it is called on (ml Vectors and casts turned
into arrays on the JVM) and :func:`output_columns` reads the output columns from the struct it
returns. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf._spark import LastShared
from sparktf.inference._plan import VALID, InputPlan, PathSource, TransformPlan, quote
from sparktf.inference._worker import predict_batches

__all__ = ["apply_plan", "make_udf", "output_columns", "ship_model", "udf_arguments"]

# The struct column the UDF writes, read and dropped at once.
_RESULT = "__sparktf_outputs"


def ship_model(shipped: LastShared, spark: Any, key: str, data: bytes | None) -> Any:
    """Send the model's bytes to the executors; return the handle the UDF carries.

    The bytes travel as a value shared once per worker (:func:`sparktf._spark.share`: a
    broadcast on a classic session, a session artifact over Spark Connect), read on the
    workers by :func:`sparktf.inference._worker.model_bytes`. ``shipped`` is the stage's last
    shipment, reused while the session and the model's ``key`` are unchanged. None when
    ``data`` is None: each worker then reads the model's path itself.
    """
    return None if data is None else shipped.get(spark, key, data)


def apply_plan(
    dataset: DataFrame, plan: TransformPlan, handle: Any, top_k_col: str = ""
) -> DataFrame:
    """``dataset`` with the plan's output columns appended (and ``top_k_col`` when the plan ranks
    labels); the rows the workers mark invalid are dropped when ``handleInvalid`` is 'skip'."""
    scored = dataset.withColumn(_RESULT, make_udf(plan, handle)(*udf_arguments(plan)))
    if plan.handle_invalid == "skip":
        scored = scored.filter(F.col(f"{_RESULT}.{VALID}"))
    kept = [F.col(quote(c)) for c in dataset.columns]
    return scored.select(*kept, *output_columns(plan, _RESULT, top_k_col))


def make_udf(plan: TransformPlan, handle: Any):
    """The pandas UDF that runs the plan on the executors; it returns one struct per row: the
    output columns ``c0``, ``c1``, ..., ``top`` with the top-K labels, and the validity flag."""
    from pyspark.sql.functions import pandas_udf

    fields = [T.StructField(f"c{i}", _spark_type(o.kind)) for i, o in enumerate(plan.outputs)]
    if plan.top_k:
        fields.append(T.StructField("top", _TOP_K_TYPE))
    fields.append(T.StructField(VALID, T.BooleanType()))

    def predict(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
        yield from predict_batches(plan, handle, batches)

    # Nondeterministic: Spark then evaluates the UDF once per row even when the struct it
    # returns is read several times (its fields, the validity filter of handleInvalid='skip').
    return pandas_udf(predict, returnType=T.StructType(fields)).asNondeterministic()


def udf_arguments(plan: TransformPlan) -> list[Column]:
    """The UDF's arguments: the input columns, then the path column used in error messages."""
    args = [_input_expr(item) for item in plan.inputs]
    args.append(_path_expr(plan.path))
    return args


def output_columns(plan: TransformPlan, result: str, top_k_col: str) -> list[Column]:
    """The output columns, read from the struct column ``result`` the UDF wrote."""
    from pyspark.ml.functions import array_to_vector

    outputs = []
    for i, item in enumerate(plan.outputs):
        column = F.col(f"{result}.c{i}")
        if item.kind == "vector":  # a null array (a row kept invalid) stays null
            column = F.when(column.isNotNull(), array_to_vector(column))
        outputs.append(column.alias(item.column))
    if plan.top_k:
        outputs.append(F.col(f"{result}.top").alias(top_k_col))
    return outputs


def _input_expr(item: InputPlan) -> Column:
    column = F.col(quote(item.column))
    if item.kind == "numeric" and item.vector:
        from pyspark.ml.functions import vector_to_array

        # the vector's doubles as the tensor's floats, or kept as doubles for a float64 tensor
        return vector_to_array(column, "float64" if item.dtype == "float64" else "float32")
    return column.cast(item.cast) if item.cast else column


def _path_expr(source: PathSource | None) -> Column:
    if source is None:
        return F.lit(None).cast("string")
    column = F.col(quote(source.column))
    return column.getField(source.field) if source.field is not None else column


_SPARK_TYPES: dict[str, T.DataType] = {
    "double": T.DoubleType(),
    "array": T.ArrayType(T.FloatType()),
    "vector": T.ArrayType(T.DoubleType()),
    "long": T.LongType(),
    "array_long": T.ArrayType(T.LongType()),
    "string": T.StringType(),
    "array_string": T.ArrayType(T.StringType()),
    "boolean": T.BooleanType(),
    "array_boolean": T.ArrayType(T.BooleanType()),
}
_TOP_K_TYPE = T.ArrayType(
    T.StructType([T.StructField("label", T.StringType()), T.StructField("score", T.FloatType())])
)


def _spark_type(kind: str) -> T.DataType:
    return _SPARK_TYPES[kind]
