"""Saving and loading sparktf stages that hold TensorFlow models.

Stages holding only Params use pyspark's ``DefaultParamsWritable``/``DefaultParamsReadable``.
Stages holding a trained network save a folder laid out like pyspark's own models::

    <path>/metadata/part-00000   pyspark metadata JSON: class, uid, Params, and sparktf's
                                 extra fields (numClasses, numFeatures, modelFile, history)
    <path>/model.keras           the network: a Keras 3 ``.keras`` zip (architecture + weights),
                                 loadable on its own with ``keras.saving.load_model``

Files are written through Hadoop's FileSystem API, so any path Spark can write (local, HDFS,
S3, ...) works, and a stage saved this way loads alone, inside a ``PipelineModel``, and inside a
``CrossValidatorModel``/``TrainValidationSplitModel``.
"""

from __future__ import annotations

import os
from typing import Any

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

__all__ = [
    "MODEL_FILE",
    "TFClassificationModelReader",
    "TFClassificationModelWriter",
    "read_bytes",
    "write_bytes",
]

MODEL_FILE = "model.keras"


def _hadoop_path(spark, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, jpath


def write_bytes(spark, path: str, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` on any filesystem Spark can write to."""
    fs, jpath = _hadoop_path(spark, path)
    stream = fs.create(jpath, overwrite)
    try:
        chunk = 16 * 1024 * 1024
        for start in range(0, len(data), chunk):
            stream.write(bytearray(data[start : start + chunk]))
    finally:
        stream.close()


def read_bytes(spark, path: str) -> bytes:
    """Read the whole file at ``path`` from any filesystem Spark can read."""
    fs, jpath = _hadoop_path(spark, path)
    if not fs.exists(jpath):
        raise FileNotFoundError(f"No such file: {path}")
    stream = fs.open(jpath)
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def _session(writer_or_reader) -> Any:
    return writer_or_reader.sparkSession


class TFClassificationModelWriter(MLWriter):
    """Writes a :class:`~sparktf.classification.TFClassificationModel` (see module docs)."""

    def __init__(self, instance) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        model = self.instance
        extra = {
            "numClasses": model._num_classes,
            "numFeatures": model._num_features,
            "outputsLogits": model._outputs_logits,
            "modelFile": MODEL_FILE if model._model_bytes is not None else None,
            "history": model._history,
        }
        DefaultParamsWriter.saveMetadata(model, path, self.sc, extraMetadata=extra)
        if model._model_bytes is not None:
            write_bytes(_session(self), os.path.join(path, MODEL_FILE), model._model_bytes)


class TFClassificationModelReader(MLReader):
    """Reads a :class:`~sparktf.classification.TFClassificationModel` saved by its writer."""

    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        model_bytes = None
        if metadata.get("modelFile"):
            model_bytes = read_bytes(_session(self), os.path.join(path, metadata["modelFile"]))
        model = self.cls._create(
            model_bytes=model_bytes,
            num_features=int(metadata["numFeatures"]),
            num_classes=int(metadata["numClasses"]),
            outputs_logits=bool(metadata.get("outputsLogits", True)),
            history=metadata.get("history") or {},
        )
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model
