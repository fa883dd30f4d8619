"""The driver side of :class:`~sparktf.transformer.TFGraphTransformer`: plan, ship the model.

When ``transform`` is called, :func:`plan_transform` checks the Params, reads the model (its
bytes, or the fingerprint of a path every worker reads) and the labels, ships the model
(:func:`ship_model`), learns the tensors the columns map to (:mod:`sparktf._outline`: on the
driver when it has TensorFlow loaded, else in one short job that loads the model in the
workers), checks them against the DataFrame's schema and the labels, and returns the plan the
UDF follows. :func:`make_udf` builds the pandas UDF around
:func:`sparktf._inference_worker.predict_batches` (what runs on the executors).

The functions take the stage (a ``TFGraphTransformer``) and read its Params through its getters;
the stage module itself is not imported here. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf._inference_worker import (
    VALID,
    InputPlan,
    ModelSpec,
    OutputPlan,
    PathSource,
    ScoresPlan,
    TopKPlan,
    TransformPlan,
    predict_batches,
    shape_text,
)
from sparktf._model_files import detect, fingerprint, read_model
from sparktf._outline import TensorRequest, model_tensors
from sparktf._spark import LastShared
from sparktf.image import IMAGE_FIELDS, parse_labels
from sparktf.param import param_error
from sparktf.param.declare import checked_values

__all__ = [
    "CHANNEL_ORDERS",
    "HANDLE_INVALID",
    "MODEL_FORMATS",
    "OUTPUT_TYPES",
    "bytes_model_spec",
    "check_params",
    "make_udf",
    "model_spec",
    "output_columns",
    "plan_transform",
    "quote",
    "read_labels",
    "scores_plan",
    "ship_model",
    "udf_arguments",
]

#: Values of the ``modelFormat`` Param.
MODEL_FORMATS = ("auto", "graphdef", "savedmodel", "keras")
#: Values of the ``outputTypes`` Param (per output column).
OUTPUT_TYPES = ("auto", "array", "double", "vector")
#: Values of the ``channelOrder`` Param.
CHANNEL_ORDERS = ("rgb", "bgr")
#: Values of the ``handleInvalid`` Param.
HANDLE_INVALID = ("error", "skip", "keep")


def quote(name: str) -> str:
    """A column name quoted for ``F.col`` (dots and backticks taken literally)."""
    return "`" + name.replace("`", "``") + "`"


# -- planning --------------------------------------------------------------------------------


def check_params(stage: Any) -> dict[str, Any]:
    """Check every Param value that needs no model; return them normalized."""
    values = checked_values(stage)  # the checks declared with the Params
    size = stage.getImageSize()
    if size and (len(size) != 2 or min(size) < 1):
        raise param_error(stage, "imageSize", "empty or [height, width] with ints >= 1", size)
    for column, kind in stage.getOutputTypes().items():
        if kind.lower() not in OUTPUT_TYPES:
            listed = ", ".join(repr(t) for t in OUTPUT_TYPES)
            raise param_error(
                stage, "outputTypes", f"a dict of column -> one of {listed}", {column: kind}
            )
    for column, shape in stage.getInputShapes().items():
        if not shape or min(shape) < 1:
            raise param_error(
                stage, "inputShapes", "a dict of column -> non-empty list of ints >= 1",
                {column: shape},
            )  # fmt: skip
    if stage.getLabels() and stage.getLabelsPath():
        raise ValueError(
            "TFGraphTransformer takes class names from labels or from labelsPath, not both. "
            f"Got {len(stage.getLabels())} labels and labelsPath={stage.getLabelsPath()!r}."
        )
    return values


def _signature_tag(signature: str) -> tuple[str, bool]:
    """The signature as it enters a model's key, and whether loading is unsafe: models loaded
    with the opt-in never serve a later safe transform from a worker's cache."""
    from sparktf._loading import unsafe_loading_allowed

    unsafe = unsafe_loading_allowed()
    return signature + ("|unsafe" if unsafe else ""), unsafe


def bytes_model_spec(data: bytes, fmt: str, signature: str = "serving_default") -> ModelSpec:
    """The spec of a model shipped as ``data`` (``fmt`` "auto" detects it): the one key both
    stages' models are cached under in the workers."""
    from sparktf._loading import model_key
    from sparktf._sources import detect_format_from_bytes

    tag, unsafe = _signature_tag(signature)
    fmt = detect_format_from_bytes(data) if fmt == "auto" else fmt
    key = model_key(data, fmt, tag)
    return ModelSpec(format=fmt, key=key, path=None, signature=signature, unsafe=unsafe)


def model_spec(stage: Any, spark: Any, fmt: str) -> tuple[ModelSpec, bytes | None]:
    """The model's spec (format, key, path) and, when shipped, its bytes."""
    from sparktf._loading import model_key

    signature = stage.getSignatureName()
    signature_tag, unsafe = _signature_tag(signature)
    path = stage.getModelPath()
    if stage.modelBytes is not None:
        if path:
            raise ValueError(
                "TFGraphTransformer was built from model bytes and also has modelPath="
                f"{path!r}; clear modelPath or build a new transformer from the path."
            )
        return bytes_model_spec(stage.modelBytes, fmt, signature), stage.modelBytes
    if not path:
        raise ValueError(
            "TFGraphTransformer has no model: set modelPath (a .pb GraphDef, a SavedModel "
            "directory or a .keras/.h5 file) or build it with TFGraphTransformer.fromBytes, "
            "fromGraphDef, fromKeras or fromSavedModel."
        )
    if stage.getBroadcastModel():
        data, is_dir = read_model(spark, path)
        fmt = detect(path, is_dir) if fmt == "auto" else fmt
        key = model_key(data, fmt, signature_tag)
        spec = ModelSpec(fmt, key, None, signature, name=path, unsafe=unsafe)
        return spec, data
    identity, is_dir = fingerprint(path)
    fmt = detect(path, is_dir) if fmt == "auto" else fmt
    key = model_key(identity.encode(), fmt, signature_tag, "path")
    return ModelSpec(format=fmt, key=key, path=path, signature=signature, unsafe=unsafe), None


def plan_transform(
    stage: Any, dataset: DataFrame, spark: Any, shipped: LastShared
) -> tuple[TransformPlan, Any]:
    """Check the model, the mapping and the DataFrame, and ship the model (reusing the stage's
    last shipment, ``shipped``); return what the UDF needs and the handle of the shipped model
    (None when each worker reads the model's path)."""
    checked = check_params(stage)
    name = type(stage).__name__
    input_mapping = stage.getInputMapping()
    if input_mapping and stage.isSet(stage.inputCol):
        raise ValueError(
            f"{name} takes its inputs from inputMapping or from inputCol, not both. Got "
            f"inputMapping={input_mapping} and inputCol={stage.getInputCol()!r}."
        )
    labels = read_labels(stage, spark)
    spec, data = model_spec(stage, spark, checked["modelFormat"])
    handle = ship_model(shipped, spark, spec.key, data)
    request = TensorRequest(
        stage=name,
        inputs=tuple(input_mapping.items()),
        input_col=stage.getInputCol() if stage.isSet(stage.inputCol) else None,
        outputs=tuple(stage.getOutputMapping().items()),
        output_col=stage.getOutputCol(),
    )
    # Loads the model on the driver, or in the workers when the driver has no TensorFlow.
    tensors = model_tensors(spark, spec, data, handle, request)
    in_infos, out_infos = list(tensors.inputs), list(tensors.outputs)

    ranks = {col: (None if i.shape is None else len(i.shape)) for col, i in in_infos}
    row_mode = all(r == 0 for r in ranks.values())
    if not row_mode and any(r == 0 for r in ranks.values()):
        raise ValueError(
            f"{name} cannot mix scalar inputs (one row per call) with batched inputs. Got "
            f"input ranks {ranks}."
        )

    schema = dataset.schema
    inputs = [_input_plan(stage, schema, col, info, row_mode, checked) for col, info in in_infos]
    outputs = _output_plans(stage, out_infos, row_mode)

    top = None
    if labels:
        top = _top_k_plan(stage, outputs, labels)
    columns = [o.column for o in outputs] + ([stage.getTopKCol()] if top else [])
    if len(set(columns)) != len(columns):
        raise ValueError(f"{name} would write the same output column twice: {columns}.")
    clash = [c for c in columns if c in dataset.columns]
    if clash:
        raise ValueError(
            f"{name} would overwrite existing column(s) {clash}; choose new output column "
            "names (outputCol, outputMapping, topKCol)."
        )
    plan = TransformPlan(
        stage=name,
        model=spec,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        top_k=top,
        row_mode=row_mode,
        batch_size=checked["batchSize"],
        handle_invalid=checked["handleInvalid"],
        path=_path_source(stage, schema, inputs),
        freeze=bool(stage.getFreezeModel()),
    )
    return plan, handle


def read_labels(stage: Any, spark: Any) -> list[str]:
    """The class names of ``labels`` or of the file at ``labelsPath``; empty when neither is set."""
    if stage.getLabels():
        return list(stage.getLabels())
    path = stage.getLabelsPath()
    if not path:
        return []
    from sparktf.persistence import read_bytes

    try:
        text = read_bytes(spark, path).decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"TFGraphTransformer cannot read its labels: no file at labelsPath {path!r}."
        ) from None
    labels = parse_labels(text)
    if not labels:
        raise ValueError(f"The labels file {path!r} of TFGraphTransformer holds no names.")
    return labels


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


def _per_row(shape: tuple[int | None, ...] | None, row_mode: bool) -> list[int | None] | None:
    if shape is None:
        return None
    return list(shape) if row_mode else list(shape[1:])


def _input_plan(
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

    def wrong(expected: str) -> TypeError:
        return TypeError(
            f"Column '{column}' of {name} feeds {wanted} and must be {expected}. Got "
            f"{dtype.simpleString()} instead."
        )

    if info.dtype == "string":
        if not isinstance(dtype, (T.BinaryType, T.StringType)):
            raise wrong("binary (e.g. encoded image bytes) or string")
        return InputPlan(**feed, kind="raw", shape=tuple(d or 1 for d in per_row or []))
    if isinstance(dtype, T.BinaryType) or _is_image_struct(dtype):
        if per_row is None or len(per_row) not in (2, 3):
            raise wrong(
                "numeric (an image tensor needs rank 3 [height, width, channels] or rank 2 "
                "[height, width] per row)"
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
            kind="image_struct" if isinstance(dtype, T.StructType) else "image_bytes",
            size=(int(size[0]), int(size[1])),
            channels=channels,
            squeeze=len(per_row) == 2,
            scaling=checked["imageScaling"],
            order=checked["channelOrder"],
            scaled=bool(stage.getScaledDecode()),
        )
    is_array = isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _NUMERIC_SPARK)
    if not (is_array or isinstance(dtype, (VectorUDT, *_NUMERIC_SPARK))):
        raise wrong(
            "numeric: a number, an array of numbers, an ml Vector, or for image tensors "
            "encoded image bytes or a Spark image struct"
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
    return InputPlan(
        **feed, kind="numeric", shape=tuple(shape), vector=isinstance(dtype, VectorUDT)
    )


def _output_plans(stage: Any, out_infos: list, row_mode: bool) -> list[OutputPlan]:
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


def _top_k_plan(stage: Any, outputs: list[OutputPlan], labels: list[str]) -> TopKPlan:
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


def _path_source(stage: Any, schema: T.StructType, inputs: list[InputPlan]) -> PathSource | None:
    path = stage.getPathCol()
    if path and path in schema.names and isinstance(schema[path].dataType, T.StringType):
        return PathSource(path)
    for item in inputs:
        struct = schema[item.column].dataType
        if item.kind == "image_struct" and "origin" in struct.fieldNames():
            return PathSource(item.column, field="origin")
    return None


def scores_plan(
    stage: str,
    features: str,
    vector: bool,
    num_features: int,
    outputs: Sequence[tuple[str, str]],
    logits: bool,
    thresholds: Sequence[float] | None,
    batch_size: int,
    spec: ModelSpec,
) -> TransformPlan:
    """The plan of a classifier's transform: its one input is the column ``features`` (ml
    Vectors when ``vector``, else numeric arrays) of ``num_features``; its one output goes
    through the classifier's head (:class:`ScoresPlan`) into the ``outputs`` asked for,
    ``(column, field)`` with field ``raw``, ``probability`` or ``prediction``. The model's
    shapes are known, so nothing is loaded to plan it."""
    kinds = {"raw": "vector", "probability": "vector", "prediction": "double"}
    return TransformPlan(
        stage=stage,
        model=spec,
        inputs=(
            InputPlan(
                features,
                "input_0",
                "float32",
                "numeric",
                shape=(num_features,),
                vector=vector,
                cast=None if vector else "array<float>",
            ),
        ),
        outputs=tuple(OutputPlan(name, "output_0", kinds[field], None) for name, field in outputs),
        top_k=None,
        row_mode=False,
        batch_size=batch_size,
        handle_invalid="error",
        path=None,
        scores=ScoresPlan(
            logits,
            tuple(field for _, field in outputs),
            None if thresholds is None else tuple(thresholds),
        ),
        invalid_hint="Drop or impute such rows before transform.",
    )


# -- shipping the model and building the UDF -------------------------------------------------


def ship_model(shipped: LastShared, spark: Any, key: str, data: bytes | None) -> Any:
    """Send the model's bytes to the executors; return the handle the UDF carries.

    The bytes travel as a value shared once per worker (:func:`sparktf._spark.share`: a
    broadcast on a classic session, a session artifact over Spark Connect), read on the
    workers by :func:`sparktf._inference_worker.model_bytes`. ``shipped`` is the stage's last
    shipment, reused while the session and the model's ``key`` are unchanged. None when
    ``data`` is None: each worker then reads the model's path itself.
    """
    return None if data is None else shipped.get(spark, key, data)


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
        if item.kind == "vector":
            column = array_to_vector(column)
        outputs.append(column.alias(item.column))
    if plan.top_k:
        outputs.append(F.col(f"{result}.top").alias(top_k_col))
    return outputs


# -- Spark expressions ----------------------------------------------------------------------


def _input_expr(item: InputPlan) -> Column:
    column = F.col(quote(item.column))
    if item.kind == "numeric" and item.vector:
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(column, "float32")
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
