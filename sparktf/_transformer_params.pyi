# The type stub of sparktf._transformer_params, written by 'python -m sparktf.param.stubs' from the
# module and its Param declarations. Do not edit: change the module and run it again.

from pyspark.ml.param import Param
from collections.abc import Mapping
from typing import Any
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasHandleInvalid, HasInputCol, HasOutputCol
from sparktf.image import SCALINGS
from sparktf.inference._plan import CHANNEL_ORDERS, HANDLE_INVALID, MODEL_FORMATS, OUTPUT_TYPES
from sparktf.param.declare import Choice, Declared, IntRange, declare_params
__all__ = ['TFGraphTransformerParams']


def _to_str_dict(value: Any) -> dict[str, str]: ...


def _to_shape_dict(value: Any) -> dict[str, list[int]]: ...


DECLARED: tuple


class TFGraphTransformerParams(HasInputCol, HasOutputCol, HasBatchSize, HasHandleInvalid):
    modelPath: Param[str]
    modelFormat: Param[str]
    signatureName: Param[str]
    broadcastModel: Param[bool]
    inputMapping: Param[dict[str, str]]
    outputMapping: Param[dict[str, str]]
    inputShapes: Param[dict[str, list[int]]]
    outputTypes: Param[dict[str, str]]
    batchSize: Param[int]
    imageSize: Param[list[int]]
    imageScaling: Param[str]
    channelOrder: Param[str]
    scaledDecode: Param[bool]
    freezeModel: Param[bool]
    labels: Param[list[str]]
    labelsPath: Param[str]
    topK: Param[int]
    topKCol: Param[str]
    scoresCol: Param[str]
    pathCol: Param[str]

    def getModelPath(self) -> str: ...

    def getModelFormat(self) -> str: ...

    def getSignatureName(self) -> str: ...

    def getBroadcastModel(self) -> bool: ...

    def getInputMapping(self) -> dict[str, str]: ...

    def getOutputMapping(self) -> dict[str, str]: ...

    def getInputShapes(self) -> dict[str, list[int]]: ...

    def getOutputTypes(self) -> dict[str, str]: ...

    def getImageSize(self) -> list[int]: ...

    def getImageScaling(self) -> str: ...

    def getChannelOrder(self) -> str: ...

    def getScaledDecode(self) -> bool: ...

    def getFreezeModel(self) -> bool: ...

    def getLabels(self) -> list[str]: ...

    def getLabelsPath(self) -> str: ...

    def getTopK(self) -> int: ...

    def getTopKCol(self) -> str: ...

    def getScoresCol(self) -> str: ...

    def getPathCol(self) -> str: ...
