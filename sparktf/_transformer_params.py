"""The Params of :class:`~sparktf.transformer.TFGraphTransformer`: definitions, defaults and
getters, with the type converters of its mapping Params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasHandleInvalid, HasInputCol, HasOutputCol

from sparktf._inference import MODEL_FORMATS, OUTPUT_TYPES

__all__ = ["TFGraphTransformerParams"]


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


class TFGraphTransformerParams(HasInputCol, HasOutputCol, HasBatchSize, HasHandleInvalid):
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
    freezeModel: Param[bool] = Param(
        Params._dummy(),
        "freezeModel",
        "if true, a Keras model runs as a frozen graph (its variables folded into constants, "
        "which lets TensorFlow fold batch normalization into convolutions): faster per batch, "
        "for a one-time cost of one to a few seconds in each Python worker; GraphDefs are "
        "frozen already and SavedModels run as they are",
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
            freezeModel=False,
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

    def getFreezeModel(self) -> bool:
        """Gets the value of freezeModel or its default value."""
        return self.getOrDefault(self.freezeModel)

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
