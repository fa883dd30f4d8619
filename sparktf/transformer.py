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

``transform`` runs sparktf's inference engine (:mod:`sparktf.inference`): planned on the driver
by :mod:`sparktf.inference._driver`, run on the executors by :mod:`sparktf.inference._worker`.
"""

from __future__ import annotations

from typing import Any

from pyspark.ml import Transformer
from pyspark.ml.util import MLReadable, MLWritable
from pyspark.sql import DataFrame

from sparktf._spark import LastShared
from sparktf._transformer_params import TFGraphTransformerParams
from sparktf.inference._driver import check_params, plan_transform
from sparktf.inference._model_files import local_files
from sparktf.inference._plan import MODEL_FORMATS, OUTPUT_TYPES
from sparktf.inference._udf import apply_plan
from sparktf.param.declare import declare_stage, keywords

__all__ = ["MODEL_FORMATS", "OUTPUT_TYPES", "TFGraphTransformer"]


@declare_stage
class TFGraphTransformer(Transformer, TFGraphTransformerParams, MLWritable, MLReadable):
    """Applies a trained TensorFlow model to DataFrame columns in batches.

    The model is a frozen GraphDef (``.pb``), a SavedModel directory (one signature) or a Keras
    file (``.keras``/``.h5``), given by ``modelPath`` or built in memory with
    :meth:`fromBytes`, :meth:`fromGraphDef`, :meth:`fromKeras` or :meth:`fromSavedModel`.
    Columns feed input tensors (``inputMapping``, or ``inputCol`` for a one-input model) and
    output tensors become new columns (``outputMapping``, or ``outputCol``); ``outputMapping``
    may also name any layer of a Keras model, whose output (the model cut there) becomes e.g.
    an ml Vector of features with ``outputTypes={column: "vector"}``. Input columns may be
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

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self._model_bytes: bytes | None = None
        self._shipped = LastShared()
        self._set(**keywords(self, "__init__", params))

    def setParams(self, **params: Any) -> TFGraphTransformer:
        """Sets Params of this TFGraphTransformer (only those passed)."""
        return self._set(**keywords(self, "setParams", params))

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
        from sparktf.inference._formats import zip_files

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
        that._shipped = LastShared()
        return that

    # -- transform -------------------------------------------------------------------------------

    def _check_params(self) -> dict[str, Any]:
        """Check every Param value that needs no model; return them normalized."""
        return check_params(self)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        plan, handle = plan_transform(self, dataset, dataset.sparkSession, self._shipped)
        return apply_plan(dataset, plan, handle, self.getTopKCol())

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
