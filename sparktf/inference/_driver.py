"""The driver side of a transform: check the Params, read and ship the model, plan the UDF.

:func:`plan_transform` (for :class:`~sparktf.transformer.TFGraphTransformer`) checks the Params,
reads the model (its bytes, or the fingerprint of a path every worker reads) and the labels,
ships the model (:func:`sparktf.inference._udf.ship_model`), learns the tensors the columns map
to (:mod:`sparktf.inference._outline`: on the driver when it has TensorFlow loaded, else in one
short job that loads the model in the workers), checks them against the DataFrame's schema and
the labels (:mod:`sparktf.inference._columns`), and returns the plan the UDF follows.
:func:`scores_plan` is the plan of a :class:`~sparktf.classification.TFClassificationModel`'s
transform: one input, one output through the classifier's head (and
:func:`failed_trial_scores` the scores of a failed trial's model, which has no network).

The functions take the stage and read its Params through its getters; no stage module is
imported here. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame

from sparktf._spark import LastShared
from sparktf.image import parse_labels
from sparktf.inference._columns import input_plan, output_plans, path_source, top_k_plan
from sparktf.inference._model_files import detect, fingerprint, read_model
from sparktf.inference._outline import TensorRequest, model_tensors
from sparktf.inference._plan import (
    OUTPUT_TYPES,
    InputPlan,
    ModelSpec,
    OutputPlan,
    PathSource,
    ScoresPlan,
    TransformPlan,
    quote,
)
from sparktf.inference._udf import ship_model
from sparktf.param import param_error
from sparktf.param.declare import checked_values

__all__ = [
    "bytes_model_spec",
    "check_params",
    "failed_trial_scores",
    "model_spec",
    "plan_transform",
    "read_labels",
    "scores_plan",
]


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
    from sparktf.inference._formats import detect_format_from_bytes

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
    inputs = [input_plan(stage, schema, col, info, row_mode, checked) for col, info in in_infos]
    outputs = output_plans(stage, out_infos, row_mode)

    top = top_k_plan(stage, outputs, labels) if labels else None
    _check_new_columns(
        name, [o.column for o in outputs] + ([stage.getTopKCol()] if top else []), dataset
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
        path=path_source(stage, schema, inputs),
        freeze=bool(stage.getFreezeModel()),
    )
    return plan, handle


def _check_new_columns(name: str, columns: list[str], dataset: DataFrame) -> None:
    """The output columns are new and distinct."""
    if len(set(columns)) != len(columns):
        raise ValueError(f"{name} would write the same output column twice: {columns}.")
    clash = [c for c in columns if c in dataset.columns]
    if clash:
        raise ValueError(
            f"{name} would overwrite existing column(s) {clash}; choose new output column "
            "names (outputCol, outputMapping, topKCol)."
        )


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
    freeze: bool = False,
    image: dict[str, Any] | None = None,
) -> TransformPlan:
    """The plan of a classifier's transform: its one input is the column ``features`` (ml
    Vectors when ``vector``, else numeric arrays) of ``num_features``, or with ``image``
    (``kind``, ``size``, ``channels``, ``path``: the column and field naming a row in errors) an
    image column decoded as the training decoded it (0..255 pixels: the network scales them);
    its one output goes
    through the classifier's head (:class:`ScoresPlan`) into the ``outputs`` asked for,
    ``(column, field)`` with field ``raw``, ``probability`` or ``prediction``. The model's
    shapes are known, so nothing is loaded to plan it. ``freeze`` runs the network as a frozen
    graph (as :class:`TransformPlan` says)."""
    kinds = {"raw": "vector", "probability": "vector", "prediction": "double"}
    feed = InputPlan(
        features,
        "input_0",
        "float32",
        "numeric",
        shape=(num_features,),
        vector=vector,
        cast=None if vector else "array<float>",
    )
    path = None
    if image is not None:
        size, channels = tuple(image["size"]), int(image["channels"])
        feed = InputPlan(features, "input_0", "float32", image["kind"], shape=(*size, channels),
                         size=size, channels=channels, scaling="none", order="rgb")  # fmt: skip
        path = PathSource(*image["path"]) if image.get("path") else None
    return TransformPlan(
        stage=stage,
        model=spec,
        inputs=(feed,),
        outputs=tuple(OutputPlan(name, "output_0", kinds[field], None) for name, field in outputs),
        top_k=None,
        row_mode=False,
        batch_size=batch_size,
        handle_invalid="error",
        path=path,
        scores=ScoresPlan(
            logits,
            tuple(field for _, field in outputs),
            None if thresholds is None else tuple(thresholds),
        ),
        invalid_hint="Drop or impute such rows before transform.",
        freeze=freeze,
    )


def failed_trial_scores(
    dataset: DataFrame, label: str, num_classes: int, outputs: Sequence[tuple[str, str]]
) -> DataFrame:
    """The classifier's scores for a failed trial, which has no network: the worst possible
    prediction for every labelled row (column ``label``), in the ``outputs`` asked for (as in
    :func:`scores_plan`), computed by Spark alone."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    wrong = ((F.col(label).cast("int") + 1) % F.lit(num_classes)).cast("int")
    one_hot = F.transform(
        F.array_repeat(F.lit(0.0), num_classes),
        lambda v, i: F.when(i == wrong, 1.0).otherwise(0.0),
    )
    columns = {
        "raw": array_to_vector(one_hot),
        "probability": array_to_vector(one_hot),
        "prediction": wrong.cast("double"),
    }
    return dataset.select(
        *[F.col(quote(c)) for c in dataset.columns],
        *[columns[field].alias(name) for name, field in outputs],
    )
