"""Saving and loading sparktf stages that hold TensorFlow models.

Stages holding only Params use pyspark's ``DefaultParamsWritable``/``DefaultParamsReadable``.
Stages holding a trained network save a folder laid out like pyspark's own models::

    <path>/metadata/part-00000   pyspark metadata JSON: class, uid, Params, and sparktf's
                                 extra fields (numClasses, numFeatures, modelFile, history)
    <path>/model.keras           the network: a Keras 3 ``.keras`` zip (architecture + weights),
                                 loadable on its own with ``keras.saving.load_model``

Files are written through :mod:`sparktf._spark` (Hadoop's FileSystem API on a classic session;
over Spark Connect, DataFrame writes), so any path Spark can write (local, HDFS, S3, ...)
works, and a stage saved this way loads alone, inside a ``PipelineModel``, and inside a
``CrossValidatorModel``/``TrainValidationSplitModel``.
"""

from __future__ import annotations

import os
from typing import Any

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

from sparktf._spark import delete_path, list_files, path_status, read_bytes, write_bytes

__all__ = [
    "FORMAT_VERSION",
    "GRAPH_TRANSFORMER_FILES",
    "MODEL_FILE",
    "ParamsWriter",
    "TFClassificationModelReader",
    "TFClassificationModelWriter",
    "TFGraphTransformerReader",
    "TFGraphTransformerWriter",
    "delete_path",
    "list_files",
    "load_cross_validator_model",
    "path_status",
    "read_bytes",
    "write_bytes",
]

MODEL_FILE = "model.keras"
#: The layout version written into every saved stage's metadata (``sparktfFormat``); a reader
#: refuses a folder written by a newer sparktf rather than misreading it.
FORMAT_VERSION = 1


def _check_format(metadata: dict, path: str) -> None:
    version = metadata.get("sparktfFormat", 1)  # folders saved before the field existed: 1
    if not isinstance(version, int) or version > FORMAT_VERSION:
        from sparktf import __version__

        raise ValueError(
            f"{path} was saved by a newer sparktf (layout version {version!r}); sparktf "
            f"{__version__} reads layout version {FORMAT_VERSION} and older. Upgrade sparktf to "
            "load it."
        )


def _check_keras_bytes(data: bytes, path: str) -> None:
    """A ``.keras`` file is a zip archive; refuse a truncated or corrupt one when loading."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.testzip() is not None or "config.json" not in archive.namelist():
                raise zipfile.BadZipFile("missing or damaged members")
    except zipfile.BadZipFile as exc:
        raise ValueError(
            f"{path} is not a readable Keras model file ({exc}): the saved stage is corrupt "
            "or was only partly copied. Save the model again."
        ) from None


class ParamsWriter(DefaultParamsWriter):
    """pyspark's writer for stages holding only Params, with an overwrite that also works over
    Spark Connect."""

    def _handleOverwrite(self, path: str) -> None:
        delete_path(self.sparkSession, path)


class _Writer(MLWriter):
    """An ``MLWriter`` whose overwrite works on classic sessions and over Spark Connect."""

    def __init__(self, instance) -> None:
        super().__init__()
        self.instance = instance

    def _handleOverwrite(self, path: str) -> None:
        delete_path(self.sparkSession, path)


def _session(writer_or_reader) -> Any:
    return writer_or_reader.sparkSession


class _Reader(MLReader):
    """An ``MLReader`` of the stage class ``cls``; :meth:`metadata` reads and checks what the
    writer saved beside the Params."""

    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def metadata(self, path: str, checked: bool = True) -> dict:
        """The metadata saved at ``path``; ``checked``: refused unless sparktf wrote it in a
        format this version reads."""
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        if checked:
            _check_format(metadata, path)
        return metadata


class TFClassificationModelWriter(_Writer):
    """Writes a :class:`~sparktf.classification.TFClassificationModel` (see module docs)."""

    def saveImpl(self, path: str) -> None:
        model = self.instance
        extra = {
            "numClasses": model._num_classes,
            "numFeatures": model._num_features,
            "outputsLogits": model._outputs_logits,
            "image": model._image,
            "modelFile": MODEL_FILE if model._model_bytes is not None else None,
            "history": model._history,
            "sparktfFormat": FORMAT_VERSION,
        }
        DefaultParamsWriter.saveMetadata(model, path, self.sparkSession, extraMetadata=extra)
        if model._model_bytes is not None:
            write_bytes(_session(self), os.path.join(path, MODEL_FILE), model._model_bytes)


class TFClassificationModelReader(_Reader):
    """Reads a :class:`~sparktf.classification.TFClassificationModel` saved by its writer."""

    def load(self, path: str):
        metadata = self.metadata(path)
        model_bytes = None
        if metadata.get("modelFile"):
            model_path = os.path.join(path, metadata["modelFile"])
            model_bytes = read_bytes(_session(self), model_path)
            _check_keras_bytes(model_bytes, model_path)
        model = self.cls._create(
            model_bytes=model_bytes,
            num_features=int(metadata["numFeatures"]),
            num_classes=int(metadata["numClasses"]),
            outputs_logits=bool(metadata.get("outputsLogits", True)),
            history=metadata.get("history") or {},
            image=metadata.get("image"),
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


class TFGraphTransformerWriter(_Writer):
    """Writes a :class:`~sparktf.transformer.TFGraphTransformer` (layout above)."""

    def saveImpl(self, path: str) -> None:
        from sparktf.inference._formats import detect_format_from_bytes, keras_suffix, unzip_files

        stage = self.instance
        data = stage.modelBytes
        fmt = stage.getModelFormat().lower()
        model_file = None
        if data is not None:
            fmt = detect_format_from_bytes(data) if fmt == "auto" else fmt
            kind = "keras-h5" if fmt == "keras" and keras_suffix(data) == ".h5" else fmt
            model_file = GRAPH_TRANSFORMER_FILES[kind]
        extra = {"modelFormat": fmt, "modelFile": model_file, "sparktfFormat": FORMAT_VERSION}
        DefaultParamsWriter.saveMetadata(stage, path, self.sparkSession, extraMetadata=extra)
        if data is None:
            return
        spark = _session(self)
        target = os.path.join(path, model_file)
        if fmt == "savedmodel":
            for name, content in unzip_files(data).items():
                write_bytes(spark, f"{target}/{name}", content)
        else:
            write_bytes(spark, target, data)


class TFGraphTransformerReader(_Reader):
    """Reads a :class:`~sparktf.transformer.TFGraphTransformer` saved by its writer."""

    def load(self, path: str):
        from sparktf.inference._formats import zip_files

        metadata = self.metadata(path)
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
