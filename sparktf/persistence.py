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
    "GRAPH_TRANSFORMER_FILES",
    "MODEL_FILE",
    "TFClassificationModelReader",
    "TFClassificationModelWriter",
    "TFGraphTransformerReader",
    "TFGraphTransformerWriter",
    "list_files",
    "load_cross_validator_model",
    "path_status",
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


# -- TFGraphTransformer ------------------------------------------------------------------------
#
# A TFGraphTransformer saves a folder like pyspark's own stages:
#
#     <path>/metadata/part-00000   pyspark metadata JSON: class, uid, Params, plus modelFormat and
#                                  modelFile (the file or folder below, or null)
#     <path>/model.pb              a frozen GraphDef, or
#     <path>/model.keras           a Keras 3 file (model.h5 for a legacy HDF5 file), or
#     <path>/saved_model/          a SavedModel directory, as TensorFlow writes it
#
# The model is stored only when the transformer was built from model bytes; a transformer that
# reads modelPath saves the path (a Param) and reads the model from there again after loading.

GRAPH_TRANSFORMER_FILES = {
    "graphdef": "model.pb",
    "keras": "model.keras",
    "keras-h5": "model.h5",
    "savedmodel": "saved_model",
}


def delete_path(spark, path: str) -> None:
    """Remove the file or folder ``path`` (recursively) on any filesystem Spark can write to."""
    fs, jpath = _hadoop_path(spark, path)
    fs.delete(jpath, True)


def path_status(spark, path: str) -> str | None:
    """``"file"``, ``"dir"`` or None (missing) for ``path`` on any filesystem Spark can read."""
    fs, jpath = _hadoop_path(spark, path)
    if not fs.exists(jpath):
        return None
    return "dir" if fs.getFileStatus(jpath).isDirectory() else "file"


def list_files(spark, path: str) -> list[str]:
    """Paths, relative to the directory ``path`` and ``/``-separated, of all files below it."""
    fs, jpath = _hadoop_path(spark, path)
    root = fs.getFileStatus(jpath).getPath().toUri().getPath().rstrip("/")
    found = fs.listFiles(jpath, True)
    names = []
    while found.hasNext():
        full = found.next().getPath().toUri().getPath()
        names.append(full[len(root) :].lstrip("/"))
    return sorted(names)


class TFGraphTransformerWriter(MLWriter):
    """Writes a :class:`~sparktf.transformer.TFGraphTransformer` (layout above)."""

    def __init__(self, instance) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        from sparktf._sources import detect_format_from_bytes, keras_suffix, unzip_files

        stage = self.instance
        data = stage.modelBytes
        fmt = stage.getModelFormat().lower()
        model_file = None
        if data is not None:
            fmt = detect_format_from_bytes(data) if fmt == "auto" else fmt
            kind = "keras-h5" if fmt == "keras" and keras_suffix(data) == ".h5" else fmt
            model_file = GRAPH_TRANSFORMER_FILES[kind]
        extra = {"modelFormat": fmt, "modelFile": model_file}
        DefaultParamsWriter.saveMetadata(stage, path, self.sc, extraMetadata=extra)
        if data is None:
            return
        spark = _session(self)
        target = os.path.join(path, model_file)
        if fmt == "savedmodel":
            for name, content in unzip_files(data).items():
                write_bytes(spark, f"{target}/{name}", content)
        else:
            write_bytes(spark, target, data)


class TFGraphTransformerReader(MLReader):
    """Reads a :class:`~sparktf.transformer.TFGraphTransformer` saved by its writer."""

    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        from sparktf._sources import zip_files

        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        stage = self.cls()
        model_file = metadata.get("modelFile")
        if model_file:
            spark = _session(self)
            source = os.path.join(path, model_file)
            if metadata.get("modelFormat") == "savedmodel":
                names = list_files(spark, source)
                data = zip_files({n: read_bytes(spark, f"{source}/{n}") for n in names})
            else:
                data = read_bytes(spark, source)
            stage._model_bytes = data
        stage._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(stage, metadata)
        return stage


def load_cross_validator_model(path: str):
    """Load a saved ``CrossValidatorModel``, keeping each fold's sub-models apart.

    pyspark's own ``CrossValidatorModel.load`` (up to at least 4.3) builds its sub-model table
    as ``[[None] * n] * k``: all k folds share one list, so after loading every fold shows the
    last fold's models. This loader reads the same folder and rebuilds the table with one list
    per fold; everything else is pyspark's reader unchanged.
    """
    from pyspark.ml.tuning import CrossValidatorModel

    model = CrossValidatorModel.load(path)
    folds = model.subModels
    if folds is not None and len(folds) > 1 and folds[0] is folds[-1]:
        # The shared list holds the last fold's models; read the earlier folds again.
        spark = MLReader().sparkSession
        model.subModels = [
            [
                DefaultParamsReader.loadParamsInstance(
                    os.path.join(path, "subModels", f"fold{fold}", str(index)), spark
                )
                for index in range(len(folds[-1]))
            ]
            for fold in range(len(folds) - 1)
        ] + [list(folds[-1])]
    return model
