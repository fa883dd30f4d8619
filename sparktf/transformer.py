"""TFGraphTransformer: apply a trained TensorFlow model to DataFrame columns.

The model (a frozen GraphDef, a SavedModel signature or a Keras file) is read once on the driver
and broadcast, or read by every worker from a path they all see. ``transform`` runs a pandas UDF
(iterator of Arrow batches): each Python worker loads the model once, keeps it in a small cache
keyed by the model's identity, and feeds it ``batchSize`` rows at a time. Input columns are kept;
one column per mapped output tensor is appended, plus the top-K ``(label, score)`` pairs when class
names are given.

Every check that can be made without looking at the rows (model readable, tensor names, column
types, static shapes, Param values) runs on the driver when ``transform`` is called, before any
Spark job. Checks on row values (array lengths, undecodable images) run in the tasks.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.linalg import VectorUDT
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasHandleInvalid, HasInputCol, HasOutputCol
from pyspark.ml.util import MLReadable, MLWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf.image import (
    IMAGE_FIELDS,
    OPENCV_MODES,
    decode_image,
    parse_labels,
    prepare_pixels,
    spark_image_to_array,
    top_k,
)
from sparktf.param import check_choice, check_int_range, param_error

__all__ = ["MODEL_FORMATS", "OUTPUT_TYPES", "TFGraphTransformer"]

#: Values of the ``modelFormat`` Param.
MODEL_FORMATS = ("auto", "graphdef", "savedmodel", "keras")
#: Values of the ``outputTypes`` Param (per output column).
OUTPUT_TYPES = ("auto", "array", "double", "vector")
_SCALINGS = ("none", "unit", "signed")
_CHANNEL_ORDERS = ("rgb", "bgr")
_INVALID = ("error", "skip", "keep")
_OUT = "__sparktf_outputs"
_VALID = "__valid"
_IMAGE_DIMS = list(IMAGE_FIELDS[1:5])  # height, width, nChannels, mode


# -- type converters for the mapping Params (JSON-serializable dicts) --------------------------


def _to_str_dict(value: Any) -> dict[str, str]:
    """Type converter: a mapping of str -> str (e.g. column -> tensor name)."""
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise TypeError(f"Could not convert {value!r} to a dict of str -> str.")


def _to_shape_dict(value: Any) -> dict[str, list[int]]:
    """Type converter: a mapping of column -> shape (list of ints)."""
    if isinstance(value, Mapping):
        result: dict[str, list[int]] = {}
        for key, shape in value.items():
            if not isinstance(key, str) or not isinstance(shape, (list, tuple)):
                break
            if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
                break
            result[key] = [int(d) for d in shape]
        else:
            return result
    raise TypeError(f"Could not convert {value!r} to a dict of column -> list of ints.")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _TFGraphTransformerParams(HasInputCol, HasOutputCol, HasBatchSize, HasHandleInvalid):
    """Params of :class:`TFGraphTransformer`."""

    modelPath: Param[str] = Param(
        Params._dummy(),
        "modelPath",
        "path of the model: a frozen GraphDef file (.pb), a SavedModel directory, or a Keras "
        "file (.keras, .h5); any filesystem Spark can read when broadcastModel is true. Empty "
        "when the transformer was built from model bytes",
        typeConverter=TypeConverters.toString,
    )
    modelFormat: Param[str] = Param(
        Params._dummy(),
        "modelFormat",
        "format of the model (one of: " + ", ".join(MODEL_FORMATS) + "); 'auto' detects it from "
        "the path (directory: savedmodel; .keras/.h5: keras; else graphdef) or the bytes",
        typeConverter=TypeConverters.toString,
    )
    signatureName: Param[str] = Param(
        Params._dummy(),
        "signatureName",
        "SavedModel signature to run (a key of the model's signatures, e.g. serving_default)",
        typeConverter=TypeConverters.toString,
    )
    broadcastModel: Param[bool] = Param(
        Params._dummy(),
        "broadcastModel",
        "if true, the driver reads the model and broadcasts it (a path only the driver sees "
        "works); if false, each Python worker reads modelPath itself, which must then be a path "
        "every worker sees (local or a filesystem TensorFlow can read): for large models",
        typeConverter=TypeConverters.toBoolean,
    )
    inputMapping: Param[dict[str, str]] = Param(
        Params._dummy(),
        "inputMapping",
        "input column -> input tensor name (dict of str -> str), one entry per model input; "
        "empty: inputCol feeds the model's only input",
        typeConverter=_to_str_dict,
    )
    outputMapping: Param[dict[str, str]] = Param(
        Params._dummy(),
        "outputMapping",
        "output tensor name -> output column (dict of str -> str), one entry per wanted output; "
        "empty: the model's only output goes to outputCol",
        typeConverter=_to_str_dict,
    )
    inputShapes: Param[dict[str, list[int]]] = Param(
        Params._dummy(),
        "inputShapes",
        "input column -> shape one row is reshaped to, without the batch dimension (dict of "
        "str -> list of ints >= 1); needed only when the tensor's static shape has unknown sizes",
        typeConverter=_to_shape_dict,
    )
    outputTypes: Param[dict[str, str]] = Param(
        Params._dummy(),
        "outputTypes",
        "output column -> column type (one of: " + ", ".join(OUTPUT_TYPES) + "). 'auto': double "
        "for one number per row, array<float> for several (flattened), long/string/boolean for "
        "integer/string/bool tensors; 'vector': an ml DenseVector",
        typeConverter=_to_str_dict,
    )
    imageSize: Param[list[int]] = Param(
        Params._dummy(),
        "imageSize",
        "[height, width] images are resized to (list of two ints >= 1); empty: the input "
        "tensor's static size",
        typeConverter=TypeConverters.toListInt,
    )
    imageScaling: Param[str] = Param(
        Params._dummy(),
        "imageScaling",
        "pixel scaling the model expects (one of: none (0..255), unit ([0, 1]), signed ([-1, 1]))",
        typeConverter=TypeConverters.toString,
    )
    channelOrder: Param[str] = Param(
        Params._dummy(),
        "channelOrder",
        "channel order the model expects for 3-channel images (one of: rgb, bgr)",
        typeConverter=TypeConverters.toString,
    )
    labels: Param[list[str]] = Param(
        Params._dummy(),
        "labels",
        "class names, one per score of scoresCol (list of str); with labelsPath unset, enables "
        "the topKCol column when non-empty",
        typeConverter=TypeConverters.toListString,
    )
    labelsPath: Param[str] = Param(
        Params._dummy(),
        "labelsPath",
        "path of a text file with one class name per line (read on the driver); alternative to "
        "labels",
        typeConverter=TypeConverters.toString,
    )
    topK: Param[int] = Param(
        Params._dummy(),
        "topK",
        "number of (label, score) pairs per row in topKCol, highest score first (int >= 1)",
        typeConverter=TypeConverters.toInt,
    )
    topKCol: Param[str] = Param(
        Params._dummy(),
        "topKCol",
        "output column of the top-K labels, array<struct<label:string, score:float>>; written "
        "only when labels or labelsPath is set",
        typeConverter=TypeConverters.toString,
    )
    scoresCol: Param[str] = Param(
        Params._dummy(),
        "scoresCol",
        "output column whose scores are ranked for topKCol; empty: the only output column",
        typeConverter=TypeConverters.toString,
    )
    pathCol: Param[str] = Param(
        Params._dummy(),
        "pathCol",
        "string column naming each row's source file, used in error messages when present "
        "(e.g. 'path' from the binaryFile data source); image structs use their origin",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            modelPath="",
            modelFormat="auto",
            signatureName="serving_default",
            broadcastModel=True,
            inputMapping={},
            outputMapping={},
            inputShapes={},
            outputTypes={},
            imageSize=[],
            imageScaling="unit",
            channelOrder="rgb",
            labels=[],
            labelsPath="",
            topK=5,
            topKCol="topK",
            scoresCol="",
            pathCol="path",
            batchSize=256,
            handleInvalid="error",
            outputCol="prediction",
        )

    def getModelPath(self) -> str:
        """Gets the value of modelPath or its default value."""
        return self.getOrDefault(self.modelPath)

    def getModelFormat(self) -> str:
        """Gets the value of modelFormat or its default value."""
        return self.getOrDefault(self.modelFormat)

    def getSignatureName(self) -> str:
        """Gets the value of signatureName or its default value."""
        return self.getOrDefault(self.signatureName)

    def getBroadcastModel(self) -> bool:
        """Gets the value of broadcastModel or its default value."""
        return self.getOrDefault(self.broadcastModel)

    def getInputMapping(self) -> dict[str, str]:
        """Gets the value of inputMapping or its default value."""
        return dict(self.getOrDefault(self.inputMapping))

    def getOutputMapping(self) -> dict[str, str]:
        """Gets the value of outputMapping or its default value."""
        return dict(self.getOrDefault(self.outputMapping))

    def getInputShapes(self) -> dict[str, list[int]]:
        """Gets the value of inputShapes or its default value."""
        return {k: list(v) for k, v in self.getOrDefault(self.inputShapes).items()}

    def getOutputTypes(self) -> dict[str, str]:
        """Gets the value of outputTypes or its default value."""
        return dict(self.getOrDefault(self.outputTypes))

    def getImageSize(self) -> list[int]:
        """Gets the value of imageSize or its default value."""
        return self.getOrDefault(self.imageSize)

    def getImageScaling(self) -> str:
        """Gets the value of imageScaling or its default value."""
        return self.getOrDefault(self.imageScaling)

    def getChannelOrder(self) -> str:
        """Gets the value of channelOrder or its default value."""
        return self.getOrDefault(self.channelOrder)

    def getLabels(self) -> list[str]:
        """Gets the value of labels or its default value."""
        return self.getOrDefault(self.labels)

    def getLabelsPath(self) -> str:
        """Gets the value of labelsPath or its default value."""
        return self.getOrDefault(self.labelsPath)

    def getTopK(self) -> int:
        """Gets the value of topK or its default value."""
        return self.getOrDefault(self.topK)

    def getTopKCol(self) -> str:
        """Gets the value of topKCol or its default value."""
        return self.getOrDefault(self.topKCol)

    def getScoresCol(self) -> str:
        """Gets the value of scoresCol or its default value."""
        return self.getOrDefault(self.scoresCol)

    def getPathCol(self) -> str:
        """Gets the value of pathCol or its default value."""
        return self.getOrDefault(self.pathCol)


class TFGraphTransformer(Transformer, _TFGraphTransformerParams, MLWritable, MLReadable):
    """Applies a trained TensorFlow model to DataFrame columns in batches.

    The model is a frozen GraphDef (``.pb``), a SavedModel directory (one signature) or a Keras
    file (``.keras``/``.h5``), given by ``modelPath`` or built in memory with
    :meth:`fromBytes`, :meth:`fromGraphDef`, :meth:`fromKeras` or :meth:`fromSavedModel`.
    Columns feed input tensors (``inputMapping``, or ``inputCol`` for a one-input model) and
    output tensors become new columns (``outputMapping``, or ``outputCol``). Input columns may be
    numbers or arrays (reshaped to the tensor's shape, cast to its dtype), ml Vectors, encoded
    image bytes or Spark image structs (decoded and resized for image tensors), or bytes/strings
    for string tensors. A graph whose input is one scalar (e.g. one encoded JPEG) runs once per
    row. With ``labels`` or ``labelsPath``, ``topKCol`` holds each row's top-K
    ``(label, score)`` pairs.

    >>> from sparktf import TFGraphTransformer
    >>> inception = TFGraphTransformer(
    ...     modelPath="/models/inception_v3.pb",
    ...     inputMapping={"content": "DecodeJpeg/contents:0"},
    ...     outputMapping={"softmax:0": "scores"},
    ...     labelsPath="/models/labels.txt",
    ...     topK=3,
    ... )
    >>> inception.getInputMapping(), inception.getTopK(), inception.getHandleInvalid()
    ({'content': 'DecodeJpeg/contents:0'}, 3, 'error')
    >>> try:
    ...     inception.setBatchSize(0)._check_params()
    ... except ValueError as error:
    ...     print(error)
    The 'batchSize' param of TFGraphTransformer must be an int in [1, inf). Got 0 instead.

    On a DataFrame read with ``spark.read.format("binaryFile").load("photos/")``,
    ``inception.transform(df)`` keeps ``path``, ``content``, ... and appends ``scores``
    (array<float>) and ``topK`` (array<struct<label:string, score:float>>).
    """

    _input_kwargs: dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        modelPath: str = "",
        modelFormat: str = "auto",
        signatureName: str = "serving_default",
        broadcastModel: bool = True,
        inputCol: str | None = None,
        outputCol: str = "prediction",
        inputMapping: dict[str, str] | None = None,
        outputMapping: dict[str, str] | None = None,
        inputShapes: dict[str, list[int]] | None = None,
        outputTypes: dict[str, str] | None = None,
        batchSize: int = 256,
        handleInvalid: str = "error",
        imageSize: list[int] | None = None,
        imageScaling: str = "unit",
        channelOrder: str = "rgb",
        labels: list[str] | None = None,
        labelsPath: str = "",
        topK: int = 5,
        topKCol: str = "topK",
        scoresCol: str = "",
        pathCol: str = "path",
    ) -> None:
        super().__init__()
        self._model_bytes: bytes | None = None
        self._broadcast: tuple[Any, str, Any] | None = None
        kwargs = self._input_kwargs
        self.setParams(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        modelPath: str = "",
        modelFormat: str = "auto",
        signatureName: str = "serving_default",
        broadcastModel: bool = True,
        inputCol: str | None = None,
        outputCol: str = "prediction",
        inputMapping: dict[str, str] | None = None,
        outputMapping: dict[str, str] | None = None,
        inputShapes: dict[str, list[int]] | None = None,
        outputTypes: dict[str, str] | None = None,
        batchSize: int = 256,
        handleInvalid: str = "error",
        imageSize: list[int] | None = None,
        imageScaling: str = "unit",
        channelOrder: str = "rgb",
        labels: list[str] | None = None,
        labelsPath: str = "",
        topK: int = 5,
        topKCol: str = "topK",
        scoresCol: str = "",
        pathCol: str = "path",
    ) -> TFGraphTransformer:
        """Sets Params of this TFGraphTransformer (only those passed)."""
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        return self._set(**kwargs)

    # -- setters ---------------------------------------------------------------------------------

    def setModelPath(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`modelPath`."""
        return self._set(modelPath=value)

    def setModelFormat(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`modelFormat`."""
        return self._set(modelFormat=value)

    def setSignatureName(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`signatureName`."""
        return self._set(signatureName=value)

    def setBroadcastModel(self, value: bool) -> TFGraphTransformer:
        """Sets the value of :py:attr:`broadcastModel`."""
        return self._set(broadcastModel=value)

    def setInputCol(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`inputCol`."""
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`outputCol`."""
        return self._set(outputCol=value)

    def setInputMapping(self, value: dict[str, str]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`inputMapping`."""
        return self._set(inputMapping=value)

    def setOutputMapping(self, value: dict[str, str]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`outputMapping`."""
        return self._set(outputMapping=value)

    def setInputShapes(self, value: dict[str, list[int]]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`inputShapes`."""
        return self._set(inputShapes=value)

    def setOutputTypes(self, value: dict[str, str]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`outputTypes`."""
        return self._set(outputTypes=value)

    def setBatchSize(self, value: int) -> TFGraphTransformer:
        """Sets the value of :py:attr:`batchSize`."""
        return self._set(batchSize=value)

    def setHandleInvalid(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`handleInvalid`."""
        return self._set(handleInvalid=value)

    def setImageSize(self, value: list[int]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`imageSize`."""
        return self._set(imageSize=value)

    def setImageScaling(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`imageScaling`."""
        return self._set(imageScaling=value)

    def setChannelOrder(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`channelOrder`."""
        return self._set(channelOrder=value)

    def setLabels(self, value: list[str]) -> TFGraphTransformer:
        """Sets the value of :py:attr:`labels`."""
        return self._set(labels=value)

    def setLabelsPath(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`labelsPath`."""
        return self._set(labelsPath=value)

    def setTopK(self, value: int) -> TFGraphTransformer:
        """Sets the value of :py:attr:`topK`."""
        return self._set(topK=value)

    def setTopKCol(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`topKCol`."""
        return self._set(topKCol=value)

    def setScoresCol(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`scoresCol`."""
        return self._set(scoresCol=value)

    def setPathCol(self, value: str) -> TFGraphTransformer:
        """Sets the value of :py:attr:`pathCol`."""
        return self._set(pathCol=value)

    # -- building from in-memory models ----------------------------------------------------------

    @classmethod
    def fromBytes(cls, data: bytes, modelFormat: str = "auto", **params: Any) -> TFGraphTransformer:
        """A transformer holding the model's bytes: a serialized GraphDef, the bytes of a
        ``.keras``/``.h5`` file, or a zip archive of a SavedModel directory. The bytes are
        broadcast at transform time and saved inside the transformer's folder by ``save``.
        ``params`` are other Params, as for the constructor."""
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise TypeError(
                "TFGraphTransformer.fromBytes needs the model as non-empty bytes. Got "
                f"{type(data).__name__} instead."
            )
        stage = cls(modelFormat=modelFormat, **params)
        stage._model_bytes = bytes(data)
        return stage

    @classmethod
    def fromGraphDef(cls, graphDef: Any, **params: Any) -> TFGraphTransformer:
        """A transformer holding a frozen ``tf.compat.v1.GraphDef`` (or its serialized bytes)."""
        data = graphDef if isinstance(graphDef, bytes) else graphDef.SerializeToString()
        return cls.fromBytes(data, modelFormat="graphdef", **params)

    @classmethod
    def fromKeras(cls, model: Any, **params: Any) -> TFGraphTransformer:
        """A transformer holding a Keras model (saved as a ``.keras`` file in memory)."""
        from sparktf._loading import keras_to_bytes

        return cls.fromBytes(keras_to_bytes(model), modelFormat="keras", **params)

    @classmethod
    def fromSavedModel(cls, directory: str, **params: Any) -> TFGraphTransformer:
        """A transformer holding a local SavedModel directory (zipped in memory)."""
        from sparktf._sources import zip_files

        files = _local_files(directory)
        if "saved_model.pb" not in files:
            raise FileNotFoundError(
                f"TFGraphTransformer.fromSavedModel needs a SavedModel directory; "
                f"'{directory}' has no saved_model.pb."
            )
        return cls.fromBytes(zip_files(files), modelFormat="savedmodel", **params)

    @property
    def modelBytes(self) -> bytes | None:
        """The model's bytes when the transformer was built from bytes, else None."""
        return self._model_bytes

    def copy(self, extra: dict | None = None) -> TFGraphTransformer:
        """A copy with the same Params (and model bytes), with ``extra`` Params applied."""
        that = super().copy(extra)
        that._broadcast = None
        return that

    # -- driver-side checks ---------------------------------------------------------------------

    def _check_params(self) -> dict[str, Any]:
        """Check every Param value that needs no model; return them normalized."""
        values = {
            "batchSize": check_int_range(self, "batchSize", 1),
            "topK": check_int_range(self, "topK", 1),
            "handleInvalid": check_choice(self, "handleInvalid", _INVALID),
            "modelFormat": check_choice(self, "modelFormat", MODEL_FORMATS),
            "imageScaling": check_choice(self, "imageScaling", _SCALINGS),
            "channelOrder": check_choice(self, "channelOrder", _CHANNEL_ORDERS),
        }
        size = self.getImageSize()
        if size and (len(size) != 2 or min(size) < 1):
            raise param_error(self, "imageSize", "empty or [height, width] with ints >= 1", size)
        for column, kind in self.getOutputTypes().items():
            if kind.lower() not in OUTPUT_TYPES:
                listed = ", ".join(repr(t) for t in OUTPUT_TYPES)
                raise param_error(
                    self, "outputTypes", f"a dict of column -> one of {listed}", {column: kind}
                )
        for column, shape in self.getInputShapes().items():
            if not shape or min(shape) < 1:
                raise param_error(
                    self, "inputShapes", "a dict of column -> non-empty list of ints >= 1",
                    {column: shape},
                )  # fmt: skip
        if self.getLabels() and self.getLabelsPath():
            raise ValueError(
                "TFGraphTransformer takes class names from labels or from labelsPath, not both. "
                f"Got {len(self.getLabels())} labels and labelsPath={self.getLabelsPath()!r}."
            )
        return values

    def _model_spec(self, spark: Any, fmt: str) -> tuple[dict[str, Any], bytes | None]:
        """The model's spec (format, key, path) and, when broadcast, its bytes."""
        from sparktf._loading import model_key
        from sparktf._sources import detect_format_from_bytes

        signature = self.getSignatureName()
        path = self.getModelPath()
        if self._model_bytes is not None:
            if path:
                raise ValueError(
                    "TFGraphTransformer was built from model bytes and also has modelPath="
                    f"{path!r}; clear modelPath or build a new transformer from the path."
                )
            data = self._model_bytes
            fmt = detect_format_from_bytes(data) if fmt == "auto" else fmt
            key = model_key(data, fmt, signature)
            return {"format": fmt, "key": key, "path": None, "signature": signature}, data
        if not path:
            raise ValueError(
                "TFGraphTransformer has no model: set modelPath (a .pb GraphDef, a SavedModel "
                "directory or a .keras/.h5 file) or build it with TFGraphTransformer.fromBytes, "
                "fromGraphDef, fromKeras or fromSavedModel."
            )
        if self.getBroadcastModel():
            data, is_dir = _read_model(spark, path)
            fmt = _detect(path, is_dir) if fmt == "auto" else fmt
            key = model_key(data, fmt, signature)
            spec = {"format": fmt, "key": key, "path": None, "signature": signature, "name": path}
            return spec, data
        fingerprint, is_dir = _fingerprint(path)
        fmt = _detect(path, is_dir) if fmt == "auto" else fmt
        key = model_key(fingerprint.encode(), fmt, signature, "path")
        return {"format": fmt, "key": key, "path": path, "signature": signature}, None

    def _plan(self, dataset: DataFrame, spark: Any) -> tuple[dict[str, Any], bytes | None]:
        """Check the model, the mapping and the DataFrame; return what the UDF needs."""
        from sparktf._sources import cached_model

        checked = self._check_params()
        spec, data = self._model_spec(spark, checked["modelFormat"])
        model = cached_model(spec, lambda: data)  # on the driver: reads names, shapes, dtypes
        stage = type(self).__name__

        input_mapping = self.getInputMapping()
        if input_mapping and self.isSet(self.inputCol):
            raise ValueError(
                f"{stage} takes its inputs from inputMapping or from inputCol, not both. Got "
                f"inputMapping={input_mapping} and inputCol={self.getInputCol()!r}."
            )
        if not input_mapping:
            if not self.isSet(self.inputCol):
                raise ValueError(
                    f"{stage} needs inputCol (for a model with one input) or inputMapping "
                    f"(column -> tensor). {model._listing()}"
                )
            if len(model.inputs) != 1:
                raise ValueError(
                    f"The model has {len(model.inputs)} inputs, so {stage} needs inputMapping "
                    f"(column -> tensor) instead of inputCol. {model._listing()}"
                )
            input_mapping = {self.getInputCol(): model.inputs[0].name}
        output_mapping = self.getOutputMapping()
        if not output_mapping:
            if len(model.outputs) != 1:
                raise ValueError(
                    f"The model has {len(model.outputs)} outputs, so {stage} needs outputMapping "
                    f"(tensor -> column) to choose them. {model._listing()}"
                )
            output_mapping = {model.outputs[0].name: self.getOutputCol()}

        in_infos = [(col, model.input(name)) for col, name in input_mapping.items()]
        out_infos = [(model.output(name), col) for name, col in output_mapping.items()]
        model.check_feeds([i.name for _, i in in_infos], [o.name for o, _ in out_infos])

        ranks = {col: (None if i.shape is None else len(i.shape)) for col, i in in_infos}
        row_mode = all(r == 0 for r in ranks.values())
        if not row_mode and any(r == 0 for r in ranks.values()):
            raise ValueError(
                f"{stage} cannot mix scalar inputs (one row per call) with batched inputs. Got "
                f"input ranks {ranks}."
            )

        schema = dataset.schema
        inputs = [_input_plan(self, schema, col, info, row_mode, checked) for col, info in in_infos]
        outputs = _output_plans(self, out_infos, row_mode)

        labels = self._labels(spark)
        top = None
        if labels:
            top = _top_k_plan(self, outputs, labels)
        columns = [o["column"] for o in outputs] + ([self.getTopKCol()] if top else [])
        if len(set(columns)) != len(columns):
            raise ValueError(f"{stage} would write the same output column twice: {columns}.")
        clash = [c for c in columns if c in dataset.columns]
        if clash:
            raise ValueError(
                f"{stage} would overwrite existing column(s) {clash}; choose new output column "
                "names (outputCol, outputMapping, topKCol)."
            )
        plan = {
            "stage": stage,
            "spec": spec,
            "inputs": inputs,
            "outputs": outputs,
            "topK": top,
            "rowMode": row_mode,
            "batchSize": checked["batchSize"],
            "handleInvalid": checked["handleInvalid"],
            "path": _path_source(self, schema, inputs),
        }
        return plan, data

    def _labels(self, spark: Any) -> list[str]:
        if self.getLabels():
            return list(self.getLabels())
        path = self.getLabelsPath()
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

    # -- transform -------------------------------------------------------------------------------

    def _transform(self, dataset: DataFrame) -> DataFrame:
        spark = dataset.sparkSession
        plan, data = self._plan(dataset, spark)
        sc = spark.sparkContext
        bc = None
        if data is not None:
            key = plan["spec"]["key"]
            if self._broadcast is None or self._broadcast[:2] != (sc, key):
                self._broadcast = (sc, key, sc.broadcast(data))
            bc = self._broadcast[2]

        fields = [
            T.StructField(f"c{i}", _spark_type(o["kind"])) for i, o in enumerate(plan["outputs"])
        ]
        if plan["topK"]:
            fields.append(T.StructField("top", _TOP_K_TYPE))
        fields.append(T.StructField(_VALID, T.BooleanType()))
        predict = _make_udf(T.StructType(fields), plan, bc)

        args = [_input_expr(dataset, item) for item in plan["inputs"]]
        args.append(_path_expr(plan["path"]))
        scored = dataset.withColumn(_OUT, predict(*args))
        if plan["handleInvalid"] == "skip":
            scored = scored.filter(F.col(f"{_OUT}.{_VALID}"))
        from pyspark.ml.functions import array_to_vector

        outputs = []
        for i, item in enumerate(plan["outputs"]):
            column = F.col(f"{_OUT}.c{i}")
            if item["kind"] == "vector":
                column = array_to_vector(column)
            outputs.append(column.alias(item["column"]))
        if plan["topK"]:
            outputs.append(F.col(f"{_OUT}.top").alias(self.getTopKCol()))
        return scored.select(*[F.col(_quote(c)) for c in dataset.columns], *outputs)

    # -- persistence -----------------------------------------------------------------------------

    def write(self):
        """An MLWriter that saves the Params and, for a transformer built from bytes, the model."""
        from sparktf.persistence import TFGraphTransformerWriter

        return TFGraphTransformerWriter(self)

    @classmethod
    def read(cls):
        """An MLReader for transformers saved by :meth:`write`."""
        from sparktf.persistence import TFGraphTransformerReader

        return TFGraphTransformerReader(cls)

    def __repr__(self) -> str:
        source = "bytes" if self._model_bytes is not None else repr(self.getModelPath())
        return f"TFGraphTransformer: uid={self.uid}, model={source}"


# -- driver helpers --------------------------------------------------------------------------


def _local_files(directory: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, _, names in os.walk(directory):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                files[os.path.relpath(full, directory).replace(os.sep, "/")] = handle.read()
    return files


def _detect(path: str, is_dir: bool) -> str:
    from sparktf._sources import detect_format

    return detect_format(path, is_dir)


def _read_model(spark: Any, path: str) -> tuple[bytes, bool]:
    """Read a model file, or a SavedModel directory as a zip, on the driver."""
    from sparktf._sources import zip_files
    from sparktf.persistence import list_files, path_status, read_bytes

    status = path_status(spark, path)
    if status is None:
        raise FileNotFoundError(
            f"TFGraphTransformer cannot read its model: no file or directory at modelPath {path!r}."
        )
    if status == "dir":
        names = list_files(spark, path)
        files = {name: read_bytes(spark, path.rstrip("/") + "/" + name) for name in names}
        return zip_files(files), True
    return read_bytes(spark, path), False


# A model file read by the workers themselves is identified by its size, modification time and a
# digest of its content: the whole file up to _DIGEST_WHOLE bytes, else its first and last
# _DIGEST_SAMPLE bytes. Modification times alone are not enough: TensorFlow's file system reports
# local ones in whole seconds, and a model saved twice within a second keeps its size.
_DIGEST_WHOLE = 64 << 20
_DIGEST_SAMPLE = 1 << 20


def _file_identity(gfile: Any, path: str) -> str:
    local = path[len("file:") :] if path.startswith("file:") else path
    if os.path.exists(local):  # nanosecond modification times
        stat = os.stat(local)
        length, mtime = stat.st_size, stat.st_mtime_ns
    else:
        stat = gfile.stat(path)
        length, mtime = stat.length, stat.mtime_nsec
    digest = hashlib.sha256()
    with gfile.GFile(path, "rb") as handle:
        if length <= _DIGEST_WHOLE:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_DIGEST_SAMPLE))
            handle.seek(length - _DIGEST_SAMPLE)
            digest.update(handle.read())
    return f"{length}|{mtime}|{digest.hexdigest()}"


def _fingerprint(path: str) -> tuple[str, bool]:
    """Identity of a model path every worker reads: names, sizes, modification times and content
    digests of its files."""
    from sparktf._tf import configure_tensorflow

    tf = configure_tensorflow()
    gfile = tf.io.gfile
    if not gfile.exists(path):
        raise FileNotFoundError(
            f"TFGraphTransformer cannot read its model: no file or directory at modelPath {path!r}."
        )
    if not gfile.isdir(path):
        return f"{path}|{_file_identity(gfile, path)}", False
    parts = [path]
    for root, _, names in sorted(gfile.walk(path)):
        for name in sorted(names):
            full = os.path.join(root, name)
            parts.append(f"{os.path.relpath(full, path)}|{_file_identity(gfile, full)}")
    return "\n".join(parts), True


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
    stage: TFGraphTransformer,
    schema: T.StructType,
    column: str,
    info: Any,
    row_mode: bool,
    checked: dict[str, Any],
) -> dict[str, Any]:
    """How one input column becomes one input tensor (decided on the driver)."""
    name = type(stage).__name__
    if column not in schema.names:
        raise ValueError(
            f"{name} maps column '{column}' to tensor '{info.name}', but the DataFrame has only "
            f"these columns: {schema.names}."
        )
    dtype = schema[column].dataType
    per_row = _per_row(info.shape, row_mode)
    plan: dict[str, Any] = {"column": column, "tensor": info.name, "dtype": info.dtype}
    wanted = f"tensor {info.describe()}"

    def wrong(expected: str) -> TypeError:
        return TypeError(
            f"Column '{column}' of {name} feeds {wanted} and must be {expected}. Got "
            f"{dtype.simpleString()} instead."
        )

    if info.dtype == "string":
        if not isinstance(dtype, (T.BinaryType, T.StringType)):
            raise wrong("binary (e.g. encoded image bytes) or string")
        plan.update(kind="raw", shape=[d or 1 for d in per_row or []])
        return plan
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
        plan.update(
            kind="image_struct" if isinstance(dtype, T.StructType) else "image_bytes",
            size=[int(size[0]), int(size[1])],
            channels=channels,
            squeeze=len(per_row) == 2,
            scaling=checked["imageScaling"],
            order=checked["channelOrder"],
        )
        return plan
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
            f"expects rows of shape {_shape_text(per_row)}."
        )
    plan.update(kind="numeric", shape=list(shape), vector=isinstance(dtype, VectorUDT))
    return plan


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _output_plans(
    stage: TFGraphTransformer, out_infos: list, row_mode: bool
) -> list[dict[str, Any]]:
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
            kind = base if per_row == [] else f"array_{base}"
        else:
            kind = "double" if per_row == [] else "array"
        if kind == "double" and per_row is not None and not scalar:
            raise ValueError(
                f"Output column '{column}' of {name} cannot be a double: tensor "
                f"{info.describe()} gives rows of shape {_shape_text(per_row)}."
            )
        plans.append(
            {"column": column, "tensor": info.name, "kind": kind, "shape": per_row}
        )  # fmt: skip
    return plans


def _top_k_plan(stage: TFGraphTransformer, outputs: list, labels: list[str]) -> dict[str, Any]:
    name = type(stage).__name__
    scores = stage.getScoresCol()
    columns = [o["column"] for o in outputs]
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
    if item["kind"] not in ("array", "vector", "array_long"):
        raise ValueError(
            f"{name} ranks scores of column '{scores}', which must hold several numbers per row. "
            f"Got rows of shape {item['shape']} instead."
        )
    shape = item["shape"]
    if shape is not None and None not in shape and int(np.prod(shape)) != len(labels):
        raise ValueError(
            f"{name} has {len(labels)} labels, but column '{scores}' (tensor '{item['tensor']}') "
            f"holds {int(np.prod(shape))} scores per row; give one label per score."
        )
    return {"index": index, "labels": labels, "k": stage.getTopK(), "column": scores}


def _path_source(stage: TFGraphTransformer, schema: T.StructType, inputs: list) -> dict | None:
    path = stage.getPathCol()
    if path and path in schema.names and isinstance(schema[path].dataType, T.StringType):
        return {"column": path}
    for item in inputs:
        struct = schema[item["column"]].dataType
        if item["kind"] == "image_struct" and "origin" in struct.fieldNames():
            return {"column": item["column"], "field": "origin"}
    return None


def _input_expr(dataset: DataFrame, item: dict[str, Any]):
    column = F.col(_quote(item["column"]))
    if item["kind"] == "numeric" and item.get("vector"):
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(column, "float32")
    return column


def _path_expr(source: dict | None):
    if source is None:
        return F.lit(None).cast("string")
    column = F.col(_quote(source["column"]))
    return column.getField(source["field"]) if "field" in source else column


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


def _make_udf(return_type: T.StructType, plan: dict[str, Any], bc: Any):
    from pyspark.sql.functions import pandas_udf

    def predict(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
        from sparktf._sources import cached_model

        model = cached_model(plan["spec"], lambda: None if bc is None else bc.value)
        runner = model.runner(
            [i["tensor"] for i in plan["inputs"]], [o["tensor"] for o in plan["outputs"]]
        )
        for columns in batches:
            yield _predict_frame(runner, columns[:-1], columns[-1], plan)

    # Nondeterministic: Spark then evaluates the UDF once per row even when the struct it
    # returns is read several times (its fields, the validity filter of handleInvalid='skip').
    return pandas_udf(predict, returnType=return_type).asNondeterministic()


# -- executor side ---------------------------------------------------------------------------


class _Invalid(Exception):
    """A row whose value cannot be fed (null, undecodable image)."""


def _numpy_dtype(name: str) -> Any:
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow().as_dtype(name).as_numpy_dtype


def _shape_error(plan: dict, item: dict, got: Any) -> ValueError:
    shape = item["shape"]
    size = int(np.prod([d for d in shape if d is not None])) if shape else 1
    return ValueError(
        f"{plan['stage']}: shape mismatch for column '{item['column']}' feeding tensor "
        f"'{item['tensor']}': expected rows of shape {_shape_text(shape)} ({size} values), got "
        f"{got}."
    )


def _row_value(plan: dict, item: dict, value: Any, dtype: Any) -> np.ndarray:
    """One row of an input column as an array of the tensor's per-row shape."""
    kind = item["kind"]
    if value is None or (kind == "image_struct" and _struct_is_null(value)):
        raise _Invalid("the value is null")
    if kind in ("image_bytes", "image_struct"):
        size = (item["size"][0], item["size"][1])
        try:
            if kind == "image_bytes":
                pixels = decode_image(value, size, item["channels"])
            else:
                pixels = spark_image_to_array(value, size, item["channels"])
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        prepared = prepare_pixels(pixels, item["scaling"], item["order"], dtype)
        return prepared[:, :, 0] if item["squeeze"] else prepared
    if kind == "raw":
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return np.array(data, dtype=object).reshape(item["shape"])
    array = np.asarray(value, dtype=dtype)
    shape = item["shape"]
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    if None in shape:
        if known == 0 or array.size % known:
            raise _shape_error(plan, item, f"a row of {array.size} values")
        shape = [array.size // known if d is None else d for d in shape]
    elif array.size != known:
        raise _shape_error(plan, item, f"a row of {array.size} values")
    return array.reshape(shape)


def _numeric_block(item: dict, values: list[Any], dtype: Any) -> np.ndarray | None:
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
    shape = item["shape"]
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    per_row = block.size // n
    if None in shape:
        if known == 0 or per_row % known:
            return None
    elif per_row != known or block.size != n * known:
        return None
    return block.reshape([n, *(-1 if d is None else d for d in shape)])


# What _image_struct_parts splits a batch of image structs into: missing rows, sizes, bytes.
_StructParts = tuple[np.ndarray, np.ndarray, list[Any]]


def _image_struct_parts(frame: pd.DataFrame) -> _StructParts | None:
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


def _image_struct_block(
    item: dict, parts: _StructParts | None, start: int, stop: int, dtype: Any
) -> np.ndarray | None:
    """Rows ``start:stop`` of a batch of Spark image structs (split by :func:`_image_struct_parts`)
    as one prepared array ``(rows, height, width[, channels])``, or None when a row needs the
    per-row path: a null, another size (resizing), another mode, or a conversion between colour
    and grayscale. The result equals the per-row path's."""
    if parts is None or stop <= start or parts[0][start:stop].any():
        return None
    dims, data = parts[1][start:stop].astype(np.int64), parts[2][start:stop]
    first = dims[0]
    height, width = item["size"]
    if not (dims == first).all() or (first[0], first[1]) != (height, width):
        return None
    n_channels, mode = int(first[2]), int(first[3])
    if OPENCV_MODES.get(mode) != n_channels or (n_channels == 1) != (item["channels"] == 1):
        return None
    size = height * width * n_channels
    if any(len(d) != size for d in data):
        return None
    pixels = np.frombuffer(b"".join(data), dtype=np.uint8).reshape(len(data), height, width, -1)
    if n_channels > 1:
        pixels = pixels[..., 2::-1]  # BGR(A) -> RGB
    prepared = prepare_pixels(pixels, item["scaling"], item["order"], dtype)
    return prepared[..., 0] if item["squeeze"] else prepared


def _struct_is_null(value: Any) -> bool:
    try:
        return all(v is None or (isinstance(v, float) and np.isnan(v)) for v in value.values())
    except AttributeError:
        return False


def _column_values(column: Any) -> list[Any]:
    if isinstance(column, pd.DataFrame):  # a struct column (Spark image)
        records = column.to_dict("records")
        return [None if _struct_is_null(r) else r for r in records]
    values = column.to_numpy(dtype=object)
    return [None if v is None or v is pd.NA else v for v in values]


def _predict_frame(runner: Any, columns: Sequence[Any], paths: Any, plan: dict) -> pd.DataFrame:
    """Predict one Arrow batch: convert rows, run the model in chunks, build output columns."""
    n = len(paths)
    outputs = plan["outputs"]
    results: list[list[Any]] = [[None] * n for _ in outputs]
    top_labels: list[Any] = [None] * n
    valid = np.ones(n, dtype=bool)
    # Image structs stay a DataFrame: whole chunks of them are converted at once, and only a chunk
    # that needs a closer look is turned into one record per row.
    values: list[Any] = [
        None if item["kind"] == "image_struct" else _column_values(c)
        for item, c in zip(plan["inputs"], columns, strict=True)
    ]
    structs = [
        _image_struct_parts(c) if item["kind"] == "image_struct" else None
        for item, c in zip(plan["inputs"], columns, strict=True)
    ]
    dtypes = [_numpy_dtype(i["dtype"]) for i in plan["inputs"]]
    path_values = _column_values(paths)
    handle = plan["handleInvalid"]
    batch = plan["batchSize"]
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        ok = np.ones(stop - start, dtype=bool)
        blocks: list[Any] = []
        for i, (item, dt) in enumerate(zip(plan["inputs"], dtypes, strict=True)):
            block = None
            if item["kind"] == "numeric":
                block = _numeric_block(item, values[i][start:stop], dt)
            elif item["kind"] == "image_struct":
                block = _image_struct_block(item, structs[i], start, stop, dt)
            if block is None:  # row by row: images, strings, nulls, or a shape to report
                if values[i] is None:
                    values[i] = _column_values(columns[i])
                col = values[i]
                block = [None] * (stop - start)
                for k in np.flatnonzero(ok):
                    try:
                        block[k] = _row_value(plan, item, col[start + k], dt)
                    except _Invalid as exc:
                        r = start + k
                        if handle == "error":
                            message = _invalid_message(plan, r, path_values[r], str(exc))
                            raise ValueError(message) from None
                        ok[k] = False
            blocks.append(block)
        valid[start:stop] = ok
        kept_local = np.flatnonzero(ok)
        if not len(kept_local):
            continue
        kept = [start + k for k in kept_local]
        stacked = [
            (b if ok.all() else b[kept_local])
            if isinstance(b, np.ndarray)
            else np.stack([b[k] for k in kept_local])
            for b in blocks
        ]
        predicted, failures = _run(runner, stacked, plan, len(kept))
        if failures:
            for local, reason in failures.items():
                r = kept[local]
                if handle == "error":
                    raise ValueError(_invalid_message(plan, r, path_values[r], reason))
                valid[r] = False
            kept = [r for local, r in enumerate(kept) if local not in failures]
            if not kept:
                continue
        for j, item in enumerate(outputs):
            converted = _output_rows(predicted[j], item, plan, len(kept))
            for r, value in zip(kept, converted, strict=True):
                results[j][r] = value
        if plan["topK"]:
            top = plan["topK"]
            scores = predicted[top["index"]].reshape(len(kept), -1).astype(np.float64)
            if scores.shape[1] != len(top["labels"]):
                raise ValueError(
                    f"{plan['stage']} has {len(top['labels'])} labels, but column "
                    f"'{top['column']}' holds {scores.shape[1]} scores per row; give one label "
                    "per score."
                )
            for r, pairs in zip(kept, top_k(scores, top["labels"], top["k"]), strict=True):
                top_labels[r] = pairs
    frame = {f"c{j}": pd.Series(results[j], dtype=object) for j in range(len(outputs))}
    if plan["topK"]:
        frame["top"] = pd.Series(top_labels, dtype=object)
    frame[_VALID] = pd.Series(valid, dtype=bool)
    return pd.DataFrame(frame)


def _invalid_message(plan: dict, row: int, path: Any, reason: str) -> str:
    where = f"the row with path '{path}'" if path else f"row {row} of a batch"
    columns = ", ".join(f"'{i['column']}'" for i in plan["inputs"])
    return (
        f"{plan['stage']} cannot use the input ({columns}) of {where}: {reason}. Set "
        "handleInvalid='skip' to drop such rows or 'keep' to give them null outputs."
    )


def _data_error(exc: BaseException) -> str | None:
    """The reason a graph rejected its input data (e.g. bytes its decoder cannot read), or None
    for any other error."""
    from sparktf._tf import configure_tensorflow

    if isinstance(exc, configure_tensorflow().errors.InvalidArgumentError):
        message = getattr(exc, "message", "") or str(exc)
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        return f"the model rejected it: {first}"
    return None


def _run(
    runner: Any, arrays: list[np.ndarray], plan: dict, n: int
) -> tuple[list[np.ndarray], dict[int, str]]:
    """Run the model on ``n`` prepared rows; return the outputs of the rows that ran and, for a
    graph fed raw bytes, the rows it rejected (index -> reason)."""
    raw = any(item["kind"] == "raw" for item in plan["inputs"])
    if not plan["rowMode"]:
        try:
            outputs = runner(arrays)
        except Exception as exc:
            if not raw or _data_error(exc) is None:
                raise
            return _run_rows(runner, [a[:, None] for a in arrays], n, raw, lambda o: o[0])
        for out, item in zip(outputs, plan["outputs"], strict=True):
            if out.ndim == 0 or out.shape[0] != n:
                raise ValueError(
                    f"{plan['stage']}: output tensor '{item['tensor']}' gave shape "
                    f"{list(out.shape)} for a batch of {n} rows; its first dimension must be the "
                    "batch. For a graph that takes one row per call, its input must be a scalar."
                )
        return outputs, {}

    def squeeze(out: np.ndarray) -> np.ndarray:
        return out[0] if out.ndim >= 1 and out.shape[0] == 1 else out

    return _run_rows(runner, arrays, n, raw, squeeze)


def _run_rows(
    runner: Any, arrays: list[np.ndarray], n: int, raw: bool, per_row: Any
) -> tuple[list[np.ndarray], dict[int, str]]:
    """Run the model one row at a time (``arrays[k][i]`` is row ``i``'s input ``k``)."""
    rows: list[list[np.ndarray]] = []
    failures: dict[int, str] = {}
    for i in range(n):
        try:
            outputs = runner([a[i] for a in arrays])
        except Exception as exc:
            reason = _data_error(exc) if raw else None
            if reason is None:
                raise
            failures[i] = reason
            continue
        rows.append([per_row(out) for out in outputs])
    if not rows:
        return [], failures
    return [np.stack(column) for column in zip(*rows, strict=True)], failures


def _output_rows(values: np.ndarray, item: dict, plan: dict, n: int) -> list[Any]:
    kind = item["kind"]
    if kind in ("double", "long", "boolean", "string"):
        flat = values.reshape(n, -1)
        if flat.shape[1] != 1:
            raise ValueError(
                f"{plan['stage']}: output column '{item['column']}' holds one value per row, but "
                f"tensor '{item['tensor']}' gave {flat.shape[1]} values per row."
            )
        column = flat[:, 0]
        if kind == "double":
            return [float(v) for v in column]
        if kind == "long":
            return [int(v) for v in column]
        if kind == "boolean":
            return [bool(v) for v in column]
        return [_text(v) for v in column]
    flat = values.reshape(n, -1)
    if kind == "array":
        return list(flat.astype(np.float32, copy=False))
    if kind == "vector":
        return list(flat.astype(np.float64, copy=False))
    if kind == "array_long":
        return list(flat.astype(np.int64, copy=False))
    if kind == "array_boolean":
        return list(flat.astype(bool, copy=False))
    return [[_text(v) for v in row] for row in flat]


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
