# The type stub of sparktf._classifier_params, written by 'python -m sparktf.param.stubs' from the
# module and its Param declarations. Do not edit: change the module and run it again.

from pyspark.ml.param import Param
import dataclasses
from typing import Any
from pyspark.ml.classification import _ProbabilisticClassifierParams
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasLearningRate, HasSeed, HasStandardization, HasValidationIndicatorCol
from sparktf._image_params import IMAGE_DECLARED
from sparktf._transfer_params import TRANSFER_DECLARED
from sparktf.inference._scoring import check_thresholds
from sparktf.param.declare import Choice, Declared, FloatRange, IntList, IntRange, checked_values, declare_params
from sparktf.training._data import DEFAULT_MAX_BROADCAST_BYTES, DataSpec
from sparktf.training._networks import keras_architecture
from sparktf.training._plans import DEFAULT_SEED, TrainingSpec
__all__ = ['ACTIVATIONS', 'LEARNING_RATE_SCHEDULES', 'OPTIMIZERS']
OPTIMIZERS: tuple
ACTIVATIONS: tuple
LEARNING_RATE_SCHEDULES: tuple


def _camel(field: str) -> str: ...


def _frozen(value: Any) -> Any: ...


def _thresholds_check(stage: Any, name: str) -> list[float] | None: ...


DECLARED: tuple


class _TFClassifierParams(_ProbabilisticClassifierParams, HasSeed, HasBatchSize, HasLearningRate, HasStandardization, HasValidationIndicatorCol):
    hiddenLayers: Param[list[int]]
    convLayers: Param[list[int]]
    inputShape: Param[list[int]]
    activation: Param[str]
    optimizer: Param[str]
    epochs: Param[int]
    dropout: Param[float]
    validationSplit: Param[float]
    earlyStoppingPatience: Param[int]
    classCount: Param[int]
    kerasModel: Param[Any]
    kerasModelOutput: Param[str]
    predictBatchSize: Param[int]
    freezeModel: Param[bool]
    failOnTrialError: Param[bool]
    batchNormalization: Param[bool]
    augmentShift: Param[float]
    augmentRotation: Param[float]
    learningRateSchedule: Param[str]
    maxBroadcastBytes: Param[int]
    stagingDir: Param[str]
    numWorkers: Param[int]
    imageSize: Param[list[int]]
    imageChannels: Param[int]
    imageScaling: Param[str]
    augmentFlip: Param[bool]
    augmentZoom: Param[float]
    baseModel: Param[str]
    featureLayer: Param[str]
    trainableLayers: Param[int]
    fineTuneEpochs: Param[int]
    fineTuneLearningRate: Param[float]
    mlflowExperiment: Param[str]

    def getHiddenLayers(self) -> list[int]: ...

    def getConvLayers(self) -> list[int]: ...

    def getInputShape(self) -> list[int]: ...

    def getActivation(self) -> str: ...

    def getOptimizer(self) -> str: ...

    def getEpochs(self) -> int: ...

    def getDropout(self) -> float: ...

    def getValidationSplit(self) -> float: ...

    def getEarlyStoppingPatience(self) -> int: ...

    def getClassCount(self) -> int: ...

    def getKerasModel(self) -> Any: ...

    def getKerasModelOutput(self) -> str: ...

    def getPredictBatchSize(self) -> int: ...

    def getFreezeModel(self) -> bool: ...

    def getFailOnTrialError(self) -> bool: ...

    def getBatchNormalization(self) -> bool: ...

    def getAugmentShift(self) -> float: ...

    def getAugmentRotation(self) -> float: ...

    def getLearningRateSchedule(self) -> str: ...

    def getMaxBroadcastBytes(self) -> int: ...

    def getStagingDir(self) -> str: ...

    def getNumWorkers(self) -> int: ...

    def getImageSize(self) -> list[int]: ...

    def getImageChannels(self) -> int: ...

    def getImageScaling(self) -> str: ...

    def getAugmentFlip(self) -> bool: ...

    def getAugmentZoom(self) -> float: ...

    def getBaseModel(self) -> str: ...

    def getFeatureLayer(self) -> str: ...

    def getTrainableLayers(self) -> int: ...

    def getFineTuneEpochs(self) -> int: ...

    def getFineTuneLearningRate(self) -> float: ...

    def getMlflowExperiment(self) -> str: ...

    def _set(self, **kwargs: Any): ...

    def _data_spec(self) -> DataSpec: ...

    def _training_spec(self) -> TrainingSpec: ...


def training_spec(**params: Any) -> TrainingSpec: ...
