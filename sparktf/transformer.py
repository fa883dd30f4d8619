"""TFGraphTransformer: apply a trained TensorFlow model to DataFrame columns.

The model (a frozen GraphDef, a SavedModel signature or a Keras file) is read once on the driver
and broadcast, or read by every worker from a path they all see. ``transform`` runs a pandas UDF
(iterator of Arrow batches): each Python worker loads the model once, keeps it in a small cache
keyed by the model's identity, and feeds it ``batchSize`` rows at a time. Input columns are kept;
one column per mapped output tensor is appended, plus the top-K ``(label, score)`` pairs when class
names are given.

Every check that can be made without looking at the rows (model readable, tensor names, column
types, static shapes, Param values) runs when ``transform`` is called, before it returns. The
model's tensors are learned on the driver when it has imported TensorFlow, else in one short job
that loads the model in the Python workers (where the transform's tasks then find it), so a
driver that never touches TensorFlow does not import it. Checks on row values (array lengths,
undecodable images) run in the tasks.

The driver side of ``transform`` (planning, shipping the model) is :mod:`sparktf._inference`;
what the UDF runs on the executors is :mod:`sparktf._inference_worker`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasHandleInvalid, HasInputCol, HasOutputCol
from pyspark.ml.util import MLReadable, MLWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparktf._inference import (
    MODEL_FORMATS,
    OUTPUT_TYPES,
    check_params,
    make_udf,
    output_columns,
    plan_transform,
    quote,
    udf_arguments,
)
from sparktf._inference_worker import VALID
from sparktf._model_files import local_files

__all__ = ["MODEL_FORMATS", "OUTPUT_TYPES", "TFGraphTransformer"]

_OUT = "__sparktf_outputs"


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


class _TFGraphTransformerParams(HasInputCol, HasOutputCol, HasBatchSize, HasHandleInvalid):
    """Params of :class:`TFGraphTransformer`."""

    batchSize: Param[int] = Param(
        Params._dummy(),
        "batchSize",
        "rows fed to the model per TensorFlow call (int >= 1)",
        typeConverter=TypeConverters.toInt,
    )
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
        "for one number per row (shape [?] or [?, 1]), array<float> for several (flattened), "
        "long/string/boolean (or arrays of them) for integer/string/bool tensors; 'vector': an "
        "ml DenseVector",
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
    scaledDecode: Param[bool] = Param(
        Params._dummy(),
        "scaledDecode",
        "if true, JPEG bytes are decoded at the smallest 1/2, 1/4 or 1/8 scale still at least "
        "imageSize, then resized (several times faster on photos; pixels differ from a full "
        "decode by a fraction of a grey level on average); false: full decode, then resize",
        typeConverter=TypeConverters.toBoolean,
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
            scaledDecode=True,
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

    def getScaledDecode(self) -> bool:
        """Gets the value of scaledDecode or its default value."""
        return self.getOrDefault(self.scaledDecode)

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
        scaledDecode: bool = True,
        labels: list[str] | None = None,
        labelsPath: str = "",
        topK: int = 5,
        topKCol: str = "topK",
        scoresCol: str = "",
        pathCol: str = "path",
    ) -> None:
        super().__init__()
        self._model_bytes: bytes | None = None
        self._shipped_model: tuple[Any, str, Any] | None = None
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
        scaledDecode: bool = True,
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

    def setScaledDecode(self, value: bool) -> TFGraphTransformer:
        """Sets the value of :py:attr:`scaledDecode`."""
        return self._set(scaledDecode=value)

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

        files = local_files(directory)
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
        that._shipped_model = None
        return that

    # -- transform -------------------------------------------------------------------------------

    def _check_params(self) -> dict[str, Any]:
        """Check every Param value that needs no model; return them normalized."""
        return check_params(self)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        spark = dataset.sparkSession
        plan, handle = plan_transform(self, dataset, spark)
        predict = make_udf(plan, handle)
        scored = dataset.withColumn(_OUT, predict(*udf_arguments(plan)))
        if plan.handle_invalid == "skip":
            scored = scored.filter(F.col(f"{_OUT}.{VALID}"))
        outputs = output_columns(plan, _OUT, self.getTopKCol())
        return scored.select(*[F.col(quote(c)) for c in dataset.columns], *outputs)

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
