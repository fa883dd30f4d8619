"""TFClassifier and TFClassificationModel: a Keras classifier as a pyspark.ml Estimator.

Every hyperparameter is a Param, so ``ParamGridBuilder`` + ``CrossValidator`` or
``TrainValidationSplit`` tune it. Training runs inside Spark tasks on executors: the features and
labels are collected once through Arrow and broadcast, and :meth:`TFClassifier.fitMultiple`
trains all param maps of one call as one Spark job, one task per param map.

TensorFlow is imported only on executors (and on the driver only by the single-row
``predict*`` methods), never by importing this module.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml.classification import (
    ProbabilisticClassificationModel,
    ProbabilisticClassifier,
    _ProbabilisticClassifierParams,
)
from pyspark.ml.linalg import DenseVector, Vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasBatchSize,
    HasLearningRate,
    HasSeed,
    HasStandardization,
    HasValidationIndicatorCol,
)
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable, MLReadable, MLWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktf._data import (
    DEFAULT_MAX_BROADCAST_BYTES,
    DataSpec,
    check_features_column,
    features_as_float_array,
)
from sparktf._loading import model_key
from sparktf.errors import DriverMemoryError, TrainingError, TrialFailedError
from sparktf.param import (
    check_choice,
    check_float_range,
    check_int_list,
    check_int_range,
)

__all__ = [
    "LEARNING_RATE_SCHEDULES",
    "OPTIMIZERS",
    "DriverMemoryError",
    "TFClassificationModel",
    "TFClassifier",
    "TrainingError",
    "TrialFailedError",
]

logger = logging.getLogger("sparktf")

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam")
ACTIVATIONS = ("relu", "elu", "gelu", "selu", "tanh", "sigmoid", "swish")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")
_DEFAULT_SEED = 20161112  # a fixed default, so runs are reproducible unless a seed is set


def _to_keras_json(value: Any) -> str:
    """Type converter for ``kerasModel``: a Keras model or its JSON architecture."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value:
            try:
                json.loads(value)
            except ValueError as exc:
                raise TypeError(
                    "The 'kerasModel' param of TFClassifier must be a Keras model or its JSON "
                    f"architecture (keras.Model.to_json()). Got a string that is not JSON: {exc}"
                ) from None
        return value
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    raise TypeError(
        "The 'kerasModel' param of TFClassifier must be a Keras model or its JSON architecture "
        f"(keras.Model.to_json()). Got {type(value).__name__} instead."
    )


class _TFClassifierParams(
    _ProbabilisticClassifierParams,
    HasSeed,
    HasBatchSize,
    HasLearningRate,
    HasStandardization,
    HasValidationIndicatorCol,
):
    """Params shared by :class:`TFClassifier` and :class:`TFClassificationModel`."""

    hiddenLayers: Param[list[int]] = Param(
        Params._dummy(),
        "hiddenLayers",
        "neurons per hidden dense layer, in order (list of ints >= 1; empty: no hidden layer)",
        typeConverter=TypeConverters.toListInt,
    )
    convLayers: Param[list[int]] = Param(
        Params._dummy(),
        "convLayers",
        "filters per 3x3 convolution block (convolution, then 2x2 max pooling), in order "
        "(list of ints >= 1); empty means a plain multilayer perceptron. Needs inputShape",
        typeConverter=TypeConverters.toListInt,
    )
    inputShape: Param[list[int]] = Param(
        Params._dummy(),
        "inputShape",
        "shape each flat feature vector is reshaped to before the network, e.g. [28, 28, 1] "
        "(list of ints >= 1 whose product is the number of features; empty: keep flat)",
        typeConverter=TypeConverters.toListInt,
    )
    activation: Param[str] = Param(
        Params._dummy(),
        "activation",
        "activation of hidden and convolution layers (one of: " + ", ".join(ACTIVATIONS) + ")",
        typeConverter=TypeConverters.toString,
    )
    optimizer: Param[str] = Param(
        Params._dummy(),
        "optimizer",
        "training optimizer (one of: " + ", ".join(OPTIMIZERS) + ")",
        typeConverter=TypeConverters.toString,
    )
    epochs: Param[int] = Param(
        Params._dummy(),
        "epochs",
        "maximum number of passes over the training data (int >= 1)",
        typeConverter=TypeConverters.toInt,
    )
    dropout: Param[float] = Param(
        Params._dummy(),
        "dropout",
        "dropout rate after each hidden dense layer (float in [0, 1))",
        typeConverter=TypeConverters.toFloat,
    )
    validationSplit: Param[float] = Param(
        Params._dummy(),
        "validationSplit",
        "fraction of the training rows held out (at random, by seed) for validation metrics and "
        "early stopping (float in [0, 1)); ignored when validationIndicatorCol is set",
        typeConverter=TypeConverters.toFloat,
    )
    earlyStoppingPatience: Param[int] = Param(
        Params._dummy(),
        "earlyStoppingPatience",
        "stop after this many epochs without improvement of the validation loss (of the "
        "training loss when there is no validation data) and keep the best weights "
        "(int >= 0; 0 disables early stopping)",
        typeConverter=TypeConverters.toInt,
    )
    classCount: Param[int] = Param(
        Params._dummy(),
        "classCount",
        "number of classes K; labels must be integers in [0, K) (int >= 0; 0 infers K as the "
        "largest label + 1)",
        typeConverter=TypeConverters.toInt,
    )
    kerasModel: Param[str] = Param(
        Params._dummy(),
        "kerasModel",
        "a user architecture replacing the built-in family: a Keras model or its JSON "
        "(keras.Model.to_json()), taking the (standardized, reshaped) features and returning K "
        "logits, or K probabilities if its last layer has a softmax activation. Built-in layers "
        "only. Empty: use hiddenLayers/convLayers",
        typeConverter=_to_keras_json,
    )
    predictBatchSize: Param[int] = Param(
        Params._dummy(),
        "predictBatchSize",
        "rows per TensorFlow call when predicting in transform (int >= 1)",
        typeConverter=TypeConverters.toInt,
    )
    failOnTrialError: Param[bool] = Param(
        Params._dummy(),
        "failOnTrialError",
        "strict mode for searches: if true, fitMultiple raises as soon as one trial fails; if "
        "false, a failed trial is recorded and its model scores worst on every metric",
        typeConverter=TypeConverters.toBoolean,
    )
    batchNormalization: Param[bool] = Param(
        Params._dummy(),
        "batchNormalization",
        "batch normalization after each convolution and each hidden dense layer, before the "
        "activation (bool)",
        typeConverter=TypeConverters.toBoolean,
    )
    augmentShift: Param[float] = Param(
        Params._dummy(),
        "augmentShift",
        "training-time augmentation: shift each image at random by up to this fraction of its "
        "height and width (float in [0, 0.5); 0: off). Needs inputShape; never applied when "
        "predicting",
        typeConverter=TypeConverters.toFloat,
    )
    augmentRotation: Param[float] = Param(
        Params._dummy(),
        "augmentRotation",
        "training-time augmentation: rotate each image at random by up to this many degrees "
        "either way (float in [0, 180]; 0: off). Needs inputShape; never applied when predicting",
        typeConverter=TypeConverters.toFloat,
    )
    learningRateSchedule: Param[str] = Param(
        Params._dummy(),
        "learningRateSchedule",
        "how the learning rate changes during training (one of: constant, cosine; cosine "
        "decays it from learningRate to 0 over all epochs)",
        typeConverter=TypeConverters.toString,
    )
    maxBroadcastBytes: Param[int] = Param(
        Params._dummy(),
        "maxBroadcastBytes",
        "training data up to this size (rows x (4 x features + 8) bytes) is collected on the "
        "driver and broadcast to the training tasks; larger data is staged as Parquet files "
        "under stagingDir, which every task streams (int >= 0; 0 always stages)",
        typeConverter=TypeConverters.toInt,
    )
    stagingDir: Param[str] = Param(
        Params._dummy(),
        "stagingDir",
        "folder for staged training data, readable by every executor on a cluster (HDFS, S3, "
        "a shared mount); empty: the Spark conf spark.sparktf.stagingDir, else a temporary "
        "folder when the master is local. Staged files are removed after the job",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            hiddenLayers=[128, 64],
            convLayers=[],
            inputShape=[],
            activation="relu",
            optimizer="adam",
            learningRate=0.001,
            batchSize=32,
            epochs=30,
            dropout=0.1,
            validationSplit=0.0,
            earlyStoppingPatience=0,
            classCount=0,
            kerasModel="",
            predictBatchSize=1024,
            failOnTrialError=False,
            batchNormalization=False,
            augmentShift=0.0,
            augmentRotation=0.0,
            learningRateSchedule="constant",
            maxBroadcastBytes=DEFAULT_MAX_BROADCAST_BYTES,
            stagingDir="",
            seed=_DEFAULT_SEED,
        )

    def getHiddenLayers(self) -> list[int]:
        """Gets the value of hiddenLayers or its default value."""
        return self.getOrDefault(self.hiddenLayers)

    def getConvLayers(self) -> list[int]:
        """Gets the value of convLayers or its default value."""
        return self.getOrDefault(self.convLayers)

    def getInputShape(self) -> list[int]:
        """Gets the value of inputShape or its default value."""
        return self.getOrDefault(self.inputShape)

    def getActivation(self) -> str:
        """Gets the value of activation or its default value."""
        return self.getOrDefault(self.activation)

    def getOptimizer(self) -> str:
        """Gets the value of optimizer or its default value."""
        return self.getOrDefault(self.optimizer)

    def getEpochs(self) -> int:
        """Gets the value of epochs or its default value."""
        return self.getOrDefault(self.epochs)

    def getDropout(self) -> float:
        """Gets the value of dropout or its default value."""
        return self.getOrDefault(self.dropout)

    def getValidationSplit(self) -> float:
        """Gets the value of validationSplit or its default value."""
        return self.getOrDefault(self.validationSplit)

    def getEarlyStoppingPatience(self) -> int:
        """Gets the value of earlyStoppingPatience or its default value."""
        return self.getOrDefault(self.earlyStoppingPatience)

    def getClassCount(self) -> int:
        """Gets the value of classCount or its default value."""
        return self.getOrDefault(self.classCount)

    def getKerasModel(self) -> str:
        """Gets the value of kerasModel (JSON architecture, or empty) or its default value."""
        return self.getOrDefault(self.kerasModel)

    def getPredictBatchSize(self) -> int:
        """Gets the value of predictBatchSize or its default value."""
        return self.getOrDefault(self.predictBatchSize)

    def getFailOnTrialError(self) -> bool:
        """Gets the value of failOnTrialError or its default value."""
        return self.getOrDefault(self.failOnTrialError)

    def getBatchNormalization(self) -> bool:
        """Gets the value of batchNormalization or its default value."""
        return self.getOrDefault(self.batchNormalization)

    def getAugmentShift(self) -> float:
        """Gets the value of augmentShift or its default value."""
        return self.getOrDefault(self.augmentShift)

    def getAugmentRotation(self) -> float:
        """Gets the value of augmentRotation or its default value."""
        return self.getOrDefault(self.augmentRotation)

    def getLearningRateSchedule(self) -> str:
        """Gets the value of learningRateSchedule or its default value."""
        return self.getOrDefault(self.learningRateSchedule)

    def getMaxBroadcastBytes(self) -> int:
        """Gets the value of maxBroadcastBytes or its default value."""
        return self.getOrDefault(self.maxBroadcastBytes)

    def getStagingDir(self) -> str:
        """Gets the value of stagingDir or its default value."""
        return self.getOrDefault(self.stagingDir)

    # -- driver-side checks -------------------------------------------------------------------

    def _training_spec(self) -> dict[str, Any]:
        """Check every training Param and return them as a plain dict for the task."""
        spec = {
            "hiddenLayers": check_int_list(self, "hiddenLayers"),
            "convLayers": check_int_list(self, "convLayers"),
            "inputShape": check_int_list(self, "inputShape"),
            "activation": check_choice(self, "activation", ACTIVATIONS),
            "optimizer": check_choice(self, "optimizer", OPTIMIZERS),
            "learningRate": check_float_range(self, "learningRate", 0.0, None, closed="neither"),
            "batchSize": check_int_range(self, "batchSize", 1),
            "epochs": check_int_range(self, "epochs", 1),
            "dropout": check_float_range(self, "dropout", 0.0, 1.0, closed="left"),
            "validationSplit": check_float_range(self, "validationSplit", 0.0, 1.0, closed="left"),
            "earlyStoppingPatience": check_int_range(self, "earlyStoppingPatience", 0),
            "classCount": check_int_range(self, "classCount", 0),
            "standardization": bool(self.getStandardization()),
            "kerasModel": self.getKerasModel(),
            "batchNormalization": bool(self.getBatchNormalization()),
            "augmentShift": check_float_range(self, "augmentShift", 0.0, 0.5, closed="left"),
            "augmentRotation": check_float_range(self, "augmentRotation", 0.0, 180.0),
            "learningRateSchedule": check_choice(
                self, "learningRateSchedule", LEARNING_RATE_SCHEDULES
            ),
            "seed": int(self.getSeed()),
        }
        check_int_range(self, "predictBatchSize", 1)
        check_int_range(self, "maxBroadcastBytes", 0)
        augmented = spec["augmentShift"] > 0 or spec["augmentRotation"] > 0
        if augmented and len(spec["inputShape"]) not in (2, 3):
            raise ValueError(
                "The 'augmentShift' and 'augmentRotation' params of TFClassifier need "
                "'inputShape' ([height, width] or [height, width, channels]) to see features as "
                f"images. Got inputShape={spec['inputShape']} instead."
            )
        if spec["classCount"] == 1:
            raise ValueError(
                "The 'classCount' param of TFClassifier must be 0 (infer) or an int >= 2. "
                "Got 1 instead."
            )
        if spec["convLayers"] and not spec["inputShape"] and not spec["kerasModel"]:
            raise ValueError(
                "The 'convLayers' param of TFClassifier needs 'inputShape' (e.g. [28, 28, 1]) "
                "to reshape flat features into images. Got convLayers="
                f"{spec['convLayers']} and inputShape=[] instead."
            )
        if spec["convLayers"] and len(spec["inputShape"]) not in (2, 3):
            raise ValueError(
                "The 'inputShape' param of TFClassifier must have 2 or 3 dimensions "
                "([height, width] or [height, width, channels]) when convLayers is set. "
                f"Got {spec['inputShape']} instead."
            )
        return spec


def _inside_validator() -> bool:
    """Whether this fit was called (through any Pipeline) by a pyspark.ml tuning validator.

    CrossValidator/TrainValidationSplit train a Pipeline holding a TFClassifier through
    ``Pipeline.fit``, one param map at a time, so a failed trial reaches ``_fit`` rather than
    ``fitMultiple``. There, as in ``fitMultiple``, a failed trial must not sink the search.
    """
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename.replace("\\", "/")
        if filename.endswith("pyspark/ml/tuning.py"):
            return True
        frame = frame.f_back
    return False


def _param_label(param_map: dict) -> str:
    """A short readable name of a param map, for progress lines and messages."""
    if not param_map:
        return "defaults"
    parts = []
    for param, value in param_map.items():
        text = str(value)
        if len(text) > 40:
            text = f"<{len(text)} chars, sha256 {model_key(text.encode())[:8]}>"
        parts.append(f"{param.name}={text}")
    return ", ".join(parts)


class TFClassifier(
    ProbabilisticClassifier, _TFClassifierParams, DefaultParamsWritable, DefaultParamsReadable
):
    """A Keras neural-network classifier trained inside Spark tasks.

    Input: ``featuresCol`` as an ml Vector (dense or sparse) or array of numbers; ``labelCol``
    numeric with integer values ``0..K-1``. Output of the fitted model follows MLlib's classifier
    contract: ``rawPrediction`` and ``probability`` as ml Vectors, ``prediction`` as double.

    The built-in architecture is ``hiddenLayers`` dense layers (after ``convLayers`` convolution
    blocks when ``inputShape`` describes images) with ``dropout``, ending in K logits; or pass a
    Keras model of your own as ``kerasModel``.

    >>> from sparktf import TFClassifier
    >>> clf = TFClassifier(hiddenLayers=[64], epochs=5, learningRate=0.01)
    >>> clf.getHiddenLayers(), clf.getEpochs(), clf.getOptimizer()
    ([64], 5, 'adam')
    >>> clf.setBatchSize(64).getBatchSize()
    64
    >>> from pyspark.ml.tuning import ParamGridBuilder
    >>> grid = ParamGridBuilder().addGrid(clf.learningRate, [1e-3, 1e-2]).build()
    >>> len(grid)
    2

    Fitting (``clf.fit(df)``) trains in one Spark task; ``fitMultiple`` (used by
    ``CrossValidator`` and ``TrainValidationSplit``) trains every param map of a grid as one Spark
    job, one task per param map.
    """

    _input_kwargs: dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        hiddenLayers: list[int] | None = None,
        convLayers: list[int] | None = None,
        inputShape: list[int] | None = None,
        activation: str = "relu",
        optimizer: str = "adam",
        learningRate: float = 0.001,
        batchSize: int = 32,
        epochs: int = 30,
        dropout: float = 0.1,
        validationSplit: float = 0.0,
        validationIndicatorCol: str | None = None,
        earlyStoppingPatience: int = 0,
        classCount: int = 0,
        standardization: bool = True,
        kerasModel: Any = None,
        predictBatchSize: int = 1024,
        failOnTrialError: bool = False,
        batchNormalization: bool = False,
        augmentShift: float = 0.0,
        augmentRotation: float = 0.0,
        learningRateSchedule: str = "constant",
        maxBroadcastBytes: int = DEFAULT_MAX_BROADCAST_BYTES,
        stagingDir: str = "",
        thresholds: list[float] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        kwargs = self._input_kwargs
        self._set(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        predictionCol: str = "prediction",
        probabilityCol: str = "probability",
        rawPredictionCol: str = "rawPrediction",
        hiddenLayers: list[int] | None = None,
        convLayers: list[int] | None = None,
        inputShape: list[int] | None = None,
        activation: str = "relu",
        optimizer: str = "adam",
        learningRate: float = 0.001,
        batchSize: int = 32,
        epochs: int = 30,
        dropout: float = 0.1,
        validationSplit: float = 0.0,
        validationIndicatorCol: str | None = None,
        earlyStoppingPatience: int = 0,
        classCount: int = 0,
        standardization: bool = True,
        kerasModel: Any = None,
        predictBatchSize: int = 1024,
        failOnTrialError: bool = False,
        batchNormalization: bool = False,
        augmentShift: float = 0.0,
        augmentRotation: float = 0.0,
        learningRateSchedule: str = "constant",
        maxBroadcastBytes: int = DEFAULT_MAX_BROADCAST_BYTES,
        stagingDir: str = "",
        thresholds: list[float] | None = None,
        seed: int | None = None,
    ) -> TFClassifier:
        """Sets Params of this TFClassifier (same keywords as the constructor)."""
        kwargs = self._input_kwargs
        return self._set(**kwargs)

    def _set(self, **kwargs: Any):
        # Keyword defaults of None mean "leave the Param's default alone".
        return super()._set(**{k: v for k, v in kwargs.items() if v is not None})

    def setHiddenLayers(self, value: list[int]) -> TFClassifier:
        """Sets the value of :py:attr:`hiddenLayers`."""
        return self._set(hiddenLayers=value)

    def setConvLayers(self, value: list[int]) -> TFClassifier:
        """Sets the value of :py:attr:`convLayers`."""
        return self._set(convLayers=value)

    def setInputShape(self, value: list[int]) -> TFClassifier:
        """Sets the value of :py:attr:`inputShape`."""
        return self._set(inputShape=value)

    def setActivation(self, value: str) -> TFClassifier:
        """Sets the value of :py:attr:`activation`."""
        return self._set(activation=value)

    def setOptimizer(self, value: str) -> TFClassifier:
        """Sets the value of :py:attr:`optimizer`."""
        return self._set(optimizer=value)

    def setLearningRate(self, value: float) -> TFClassifier:
        """Sets the value of :py:attr:`learningRate`."""
        return self._set(learningRate=value)

    def setBatchSize(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`batchSize`."""
        return self._set(batchSize=value)

    def setEpochs(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`epochs`."""
        return self._set(epochs=value)

    def setDropout(self, value: float) -> TFClassifier:
        """Sets the value of :py:attr:`dropout`."""
        return self._set(dropout=value)

    def setValidationSplit(self, value: float) -> TFClassifier:
        """Sets the value of :py:attr:`validationSplit`."""
        return self._set(validationSplit=value)

    def setValidationIndicatorCol(self, value: str) -> TFClassifier:
        """Sets the value of :py:attr:`validationIndicatorCol`."""
        return self._set(validationIndicatorCol=value)

    def setEarlyStoppingPatience(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`earlyStoppingPatience`."""
        return self._set(earlyStoppingPatience=value)

    def setClassCount(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`classCount`."""
        return self._set(classCount=value)

    def setStandardization(self, value: bool) -> TFClassifier:
        """Sets the value of :py:attr:`standardization`."""
        return self._set(standardization=value)

    def setKerasModel(self, value: Any) -> TFClassifier:
        """Sets :py:attr:`kerasModel` from a Keras model or its JSON architecture."""
        return self._set(kerasModel=value)

    def setPredictBatchSize(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`predictBatchSize`."""
        return self._set(predictBatchSize=value)

    def setFailOnTrialError(self, value: bool) -> TFClassifier:
        """Sets the value of :py:attr:`failOnTrialError`."""
        return self._set(failOnTrialError=value)

    def setBatchNormalization(self, value: bool) -> TFClassifier:
        """Sets the value of :py:attr:`batchNormalization`."""
        return self._set(batchNormalization=value)

    def setAugmentShift(self, value: float) -> TFClassifier:
        """Sets the value of :py:attr:`augmentShift`."""
        return self._set(augmentShift=value)

    def setAugmentRotation(self, value: float) -> TFClassifier:
        """Sets the value of :py:attr:`augmentRotation`."""
        return self._set(augmentRotation=value)

    def setLearningRateSchedule(self, value: str) -> TFClassifier:
        """Sets the value of :py:attr:`learningRateSchedule`."""
        return self._set(learningRateSchedule=value)

    def setMaxBroadcastBytes(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`maxBroadcastBytes`."""
        return self._set(maxBroadcastBytes=value)

    def setStagingDir(self, value: str) -> TFClassifier:
        """Sets the value of :py:attr:`stagingDir`."""
        return self._set(stagingDir=value)

    def setSeed(self, value: int) -> TFClassifier:
        """Sets the value of :py:attr:`seed`."""
        return self._set(seed=value)

    def write(self):
        """An ``MLWriter`` for this estimator (its Params), on classic Spark and Connect."""
        from sparktf.persistence import ParamsWriter

        return ParamsWriter(self)

    # -- training ----------------------------------------------------------------------------

    def _training_data(self, dataset: DataFrame):
        """A context manager giving the training data a task reads (see :mod:`sparktf._data`).

        Small data is collected and broadcast; data above ``maxBroadcastBytes`` is staged as
        files and removed when the context ends, whether training succeeded or not.
        """
        from sparktf._data import training_data

        indicator = (
            self.getOrDefault(self.validationIndicatorCol)
            if self.isDefined(self.validationIndicatorCol)
            else None
        )
        spec = DataSpec(
            stage=type(self).__name__,
            features=self.getFeaturesCol(),
            label=self.getLabelCol(),
            indicator=indicator or None,
            class_count=self.getClassCount(),
            input_shape=tuple(self.getInputShape()),
            max_broadcast_bytes=self.getMaxBroadcastBytes(),
            staging_dir=self.getStagingDir(),
            seed=int(self.getSeed()),
        )
        return training_data(spec, dataset)

    def _fit(self, dataset: DataFrame) -> TFClassificationModel:
        spec = self._training_spec()
        from sparktf._distributed import record_trials, run_trainings

        with self._training_data(dataset) as data:
            (result,) = run_trainings(
                dataset.sparkSession, data, [spec], name=f"{self.uid} fit", strict=False
            )
        explicit = dict(self._paramMap)
        record_trials(self.uid, [explicit], [result])
        if result["error"]:
            if self.getFailOnTrialError() or not _inside_validator():
                raise TrainingError(f"TFClassifier training failed: {result['error']}")
            logger.warning(
                "TFClassifier trial [%s] failed and will score worst: %s",
                _param_label({p: v for p, v in explicit.items() if p.name != "kerasModel"}),
                result["error"],
            )
        return self._model_from_result(result, data, {})

    def fitMultiple(
        self, dataset: DataFrame, paramMaps: Sequence[dict]
    ) -> Iterator[tuple[int, TFClassificationModel]]:
        """Fit one model per param map, all in ONE Spark job (one task per param map).

        Returns a thread-safe iterator of ``(index, model)`` as pyspark's contract asks. The job
        runs on the first ``next()``; later calls hand out the models, and a failure of the job
        is re-raised by every later call rather than retraining. A trial that fails (an
        exception, or a NaN/inf loss) yields a model whose ``trainingFailure`` holds the error and
        which scores worst on every evaluator metric; if every trial fails, :class:`TrainingError`
        is raised. With ``failOnTrialError=True`` the first failure raises
        :class:`TrialFailedError` and cancels the job.
        """
        estimators = [self.copy(pm) for pm in paramMaps]
        specs = [est._training_spec() for est in estimators]  # bad values raise before any job
        return _TrialIterator(self, dataset, list(paramMaps), estimators, specs)

    def _model_from_result(
        self, result: dict[str, Any], data: dict[str, Any], param_map: dict
    ) -> TFClassificationModel:
        model = TFClassificationModel._create(
            model_bytes=result["model"],
            num_features=int(data["numFeatures"]),
            num_classes=int(data["numClasses"]),
            outputs_logits=bool(result.get("outputsLogits", True)),
            history={
                "epochs": result.get("history", {}),
                "seconds": result["seconds"],
                "worker": result.get("worker", {}),
                "error": result["error"],
            },
        )
        self._copyValues(model)
        model._set(**{p.name: v for p, v in param_map.items() if model.hasParam(p.name)})
        return model


class _TrialIterator:
    """Thread-safe iterator of fitMultiple results; the Spark job runs once, on first use."""

    def __init__(self, est, dataset, param_maps, estimators, specs) -> None:
        self.est = est
        self.dataset = dataset
        self.param_maps = param_maps
        self.estimators = estimators
        self.specs = specs
        self.lock = threading.Lock()
        self.results: list[TFClassificationModel] | None = None
        self.error: BaseException | None = None
        self.counter = 0

    def __iter__(self):
        return self

    def _run(self) -> None:
        from sparktf._distributed import record_trials, run_trainings

        labels = [_param_label(pm) for pm in self.param_maps]
        with self.est._training_data(self.dataset) as data:
            results = run_trainings(
                self.dataset.sparkSession,
                data,
                self.specs,
                labels=labels,
                name=f"{self.est.uid} fitMultiple",
                strict=any(est.getFailOnTrialError() for est in self.estimators),
            )
        record_trials(self.est.uid, self.param_maps, results)
        failures = [r for r in results if r["error"]]
        if failures and len(failures) == len(results):
            details = "; ".join(f"[{labels[r['index']]}] {r['error']}" for r in failures[:5])
            raise TrainingError(
                f"All {len(results)} trials of TFClassifier failed; none can be chosen. "
                f"Errors: {details}"
            )
        for record in failures:
            logger.warning(
                "TFClassifier trial [%s] failed and will score worst: %s",
                labels[record["index"]],
                record["error"],
            )
        self.results = [
            est._model_from_result(res, data, pm)
            for est, res, pm in zip(self.estimators, results, self.param_maps, strict=True)
        ]

    def __next__(self) -> tuple[int, TFClassificationModel]:
        with self.lock:
            if self.error is not None:
                raise self.error
            if self.results is None:
                try:
                    self._run()
                except BaseException as exc:
                    self.error = exc
                    raise
            assert self.results is not None
            if self.counter >= len(self.results):
                raise StopIteration("No models remaining.")
            index = self.counter
            self.counter += 1
            return index, self.results[index]


class TFClassificationModel(
    ProbabilisticClassificationModel, _TFClassifierParams, MLWritable, MLReadable
):
    """A fitted :class:`TFClassifier`: a trained Keras network and the Params it was trained with.

    ``transform`` appends ``rawPrediction`` (scores, logits for the built-in family) and
    ``probability`` as ml Vectors and ``prediction`` as double, keeping the input columns. It runs
    a pandas UDF: the model is shipped once, loaded once per Python worker, and applied in
    batches of ``predictBatchSize`` rows.
    """

    def __init__(self) -> None:
        super().__init__()
        self._model_bytes: bytes | None = None
        self._num_features = -1
        self._num_classes = -1
        self._outputs_logits = True
        self._history: dict[str, Any] = {}
        self._key: str | None = None
        self._local_model = None
        self._broadcast = None

    @classmethod
    def _create(
        cls,
        model_bytes: bytes | None,
        num_features: int,
        num_classes: int,
        outputs_logits: bool,
        history: dict[str, Any],
    ) -> TFClassificationModel:
        model = cls()
        model._model_bytes = model_bytes
        model._num_features = num_features
        model._num_classes = num_classes
        model._outputs_logits = outputs_logits
        model._history = history
        model._key = model_key(model_bytes) if model_bytes is not None else None
        return model

    def copy(self, extra: dict | None = None) -> TFClassificationModel:
        that = super().copy(extra)
        that._broadcast = None
        return that

    # -- what was learned ---------------------------------------------------------------------

    @property
    def numClasses(self) -> int:
        """Number of classes K the model predicts."""
        return self._num_classes

    @property
    def numFeatures(self) -> int:
        """Length of the feature vectors the model was trained on."""
        return self._num_features

    @property
    def trainingFailure(self) -> str | None:
        """The error of a failed trial (from fitMultiple), or None for a trained model."""
        return self._history.get("error")

    @property
    def hasModel(self) -> bool:
        """Whether this model holds trained weights (False for a failed trial)."""
        return self._model_bytes is not None

    @property
    def history(self) -> dict[str, Any]:
        """Training history: per-epoch metrics, seconds, and where the training ran.

        ``history["epochs"]`` maps a metric name (``loss``, ``accuracy``, and ``val_loss``,
        ``val_accuracy`` with validation data) to one value per epoch; ``history["seconds"]`` is
        the wall time of the training task; ``history["worker"]`` names the host, Python process
        and executor JVM that trained it.
        """
        return json.loads(json.dumps(self._history))

    @property
    def modelBytes(self) -> bytes:
        """The trained network as the bytes of a Keras ``.keras`` file."""
        self._require_model()
        assert self._model_bytes is not None
        return self._model_bytes

    def keras_model(self):
        """The trained network as a Keras model (loads TensorFlow on the driver)."""
        from sparktf._loading import load_keras_bytes

        if self._local_model is None:
            self._local_model = load_keras_bytes(self.modelBytes)
        return self._local_model

    def _require_model(self) -> None:
        if self._model_bytes is None:
            raise TrainingError(
                "This TFClassificationModel holds no trained network: its training failed with: "
                f"{self.trainingFailure}"
            )

    # -- single-row prediction (driver side) --------------------------------------------------

    def _scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(self.keras_model()(x, training=False), dtype=np.float64)
        return _raw_and_probability(out, self._outputs_logits)

    def _as_row(self, value: Vector) -> np.ndarray:
        arr = np.asarray(value.toArray() if isinstance(value, Vector) else value, np.float32)
        if arr.shape != (self._num_features,):
            raise ValueError(
                f"TFClassificationModel expects feature vectors of length {self._num_features}. "
                f"Got length {arr.size} instead."
            )
        return arr[None, :]

    def predictRaw(self, value: Vector) -> Vector:
        """Raw scores (logits) for one feature vector."""
        raw, _ = self._scores(self._as_row(value))
        return DenseVector(raw[0])

    def predictProbability(self, value: Vector) -> Vector:
        """Class probabilities for one feature vector."""
        _, prob = self._scores(self._as_row(value))
        return DenseVector(prob[0])

    def predict(self, value: Vector) -> float:
        """Predicted class index for one feature vector."""
        _, prob = self._scores(self._as_row(value))
        return float(_apply_thresholds(prob, self._thresholds())[0])

    def _thresholds(self) -> list[float] | None:
        if self.isDefined(self.thresholds):
            thresholds = self.getThresholds()
            if len(thresholds) != self._num_classes:
                raise ValueError(
                    f"The 'thresholds' param of TFClassificationModel must have one value per "
                    f"class ({self._num_classes}). Got {len(thresholds)} values instead."
                )
            return thresholds
        return None

    # -- transform ----------------------------------------------------------------------------

    def _output_columns(self) -> list[tuple[str, str]]:
        return [
            (self.getRawPredictionCol(), "raw"),
            (self.getProbabilityCol(), "probability"),
            (self.getPredictionCol(), "prediction"),
        ]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        features = self.getFeaturesCol()
        check_features_column(dataset, features, type(self).__name__)
        thresholds = self._thresholds()
        check_int_range(self, "predictBatchSize", 1)
        outputs = [(name, field) for name, field in self._output_columns() if name]
        clash = [name for name, _ in outputs if name in dataset.columns]
        if clash:
            raise ValueError(
                f"TFClassificationModel would overwrite existing column(s) {clash}; set "
                "rawPredictionCol/probabilityCol/predictionCol to new names."
            )
        if self._model_bytes is None:
            scored = self._failed_trial_scores(dataset)
        else:
            predict = self._predict_udf(dataset.sparkSession, thresholds)
            scored = dataset.withColumn(
                "__sparktf_out", predict(features_as_float_array(dataset, features))
            )
        from pyspark.ml.functions import array_to_vector

        exprs = [
            F.col(f"__sparktf_out.{field}").alias(name)
            if field == "prediction"
            else array_to_vector(F.col(f"__sparktf_out.{field}")).alias(name)
            for name, field in outputs
        ]
        return scored.select(*dataset.columns, *exprs)

    def _predict_udf(self, spark, thresholds: list[float] | None):
        from pyspark.sql.functions import pandas_udf

        from sparktf._spark import session_key, share

        if self._broadcast is None or self._broadcast[0] != session_key(spark):
            self._broadcast = (session_key(spark), share(spark, self._model_bytes))
        shared = self._broadcast[1]
        key = self._key
        logits = self._outputs_logits
        num_features = self._num_features
        batch = self.getPredictBatchSize()

        @pandas_udf(_OUT_SCHEMA)
        def predict(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            from sparktf._loading import MODEL_CACHE, load_keras_bytes

            model = MODEL_CACHE.get(key, lambda: load_keras_bytes(shared.value))
            for series in batches:
                yield pd.DataFrame(
                    _predict_batch(model, series, num_features, batch, logits, thresholds)
                )

        return predict

    def _failed_trial_scores(self, dataset: DataFrame) -> DataFrame:
        """Scores of a failed trial: the worst possible prediction for every labelled row."""
        label = self.getLabelCol()
        if label not in dataset.columns:
            self._require_model()
        k = self._num_classes
        wrong = ((F.col(label).cast("int") + 1) % F.lit(k)).cast("int")
        one_hot = F.transform(
            F.array_repeat(F.lit(0.0), k), lambda v, i: F.when(i == wrong, 1.0).otherwise(0.0)
        )
        return dataset.withColumn(
            "__sparktf_out",
            F.struct(
                one_hot.alias("raw"),
                one_hot.alias("probability"),
                wrong.cast("double").alias("prediction"),
            ),
        )

    # -- persistence --------------------------------------------------------------------------

    def write(self):
        from sparktf.persistence import TFClassificationModelWriter

        return TFClassificationModelWriter(self)

    @classmethod
    def read(cls):
        from sparktf.persistence import TFClassificationModelReader

        return TFClassificationModelReader(cls)

    def __repr__(self) -> str:
        state = "failed" if self._model_bytes is None else "trained"
        return (
            f"TFClassificationModel: uid={self.uid}, numClasses={self._num_classes}, "
            f"numFeatures={self._num_features}, {state}"
        )


_OUT_SCHEMA = T.StructType(
    [
        T.StructField("raw", T.ArrayType(T.DoubleType())),
        T.StructField("probability", T.ArrayType(T.DoubleType())),
        T.StructField("prediction", T.DoubleType()),
    ]
)


def _raw_and_probability(out: np.ndarray, outputs_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    if outputs_logits:
        shifted = out - out.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return out, exp / exp.sum(axis=1, keepdims=True)
    prob = np.clip(out, 0.0, 1.0)
    return np.log(np.clip(prob, 1e-300, None)), prob


def _apply_thresholds(prob: np.ndarray, thresholds: list[float] | None) -> np.ndarray:
    if thresholds is None:
        return prob.argmax(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = prob / np.asarray(thresholds, dtype=np.float64)
    return np.nan_to_num(scaled, nan=-np.inf).argmax(axis=1).astype(np.float64)


def _predict_batch(
    model, series, num_features: int, batch: int, logits: bool, thresholds: list[float] | None
) -> dict:
    """Predict one Arrow batch of feature arrays with a loaded Keras model."""
    n = len(series)
    if n == 0:
        return {"raw": [], "probability": [], "prediction": []}
    values = series.to_numpy()
    nulls = [i for i, v in enumerate(values) if v is None]
    if nulls:
        raise ValueError(
            f"TFClassificationModel got a null feature vector ({len(nulls)} of {n} rows in a "
            "batch); drop or impute nulls before transform."
        )
    lengths = {len(v) for v in values}
    if lengths != {num_features}:
        raise ValueError(
            f"TFClassificationModel expects feature vectors of length {num_features}. Got "
            f"length(s) {sorted(lengths)} instead."
        )
    x = np.stack(values).astype(np.float32, copy=False)
    # A direct call: no tf.function is traced per model, batch shape or worker.
    chunks = [model(x[i : i + batch], training=False) for i in range(0, n, batch)]
    out = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
    raw, prob = _raw_and_probability(out, logits)
    return {
        "raw": list(raw),
        "probability": list(prob),
        "prediction": _apply_thresholds(prob, thresholds),
    }
