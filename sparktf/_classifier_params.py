"""The Params of TFClassifier and TFClassificationModel, their checks, and the training spec.

``_TFClassifierParams`` is the mixin both stages share (as pyspark's ``_...Params`` classes
are); :meth:`_TFClassifierParams._training_spec` resolves one param map into the
``TrainingSpec`` a training task reads (:mod:`sparktf._training`).
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.ml.classification import _ProbabilisticClassifierParams
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasBatchSize,
    HasLearningRate,
    HasSeed,
    HasStandardization,
    HasValidationIndicatorCol,
)

from sparktf._data import DEFAULT_MAX_BROADCAST_BYTES
from sparktf._plans import TrainingSpec
from sparktf.param import (
    check_choice,
    check_float_range,
    check_int_list,
    check_int_range,
)

__all__ = ["ACTIVATIONS", "LEARNING_RATE_SCHEDULES", "OPTIMIZERS"]

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
    numWorkers: Param[int] = Param(
        Params._dummy(),
        "numWorkers",
        "Spark tasks that train one model together, data-parallel: one barrier stage whose "
        "tasks each read their shard of the rows and apply the same averaged gradients (int "
        ">= 1; 1: one task per model). batchSize is the global batch, split evenly among them",
        typeConverter=TypeConverters.toInt,
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
            numWorkers=1,
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

    def getNumWorkers(self) -> int:
        """Gets the value of numWorkers or its default value."""
        return self.getOrDefault(self.numWorkers)

    # -- driver-side checks -------------------------------------------------------------------

    def _training_spec(self) -> TrainingSpec:
        """Check every training Param and resolve them into the plan a training task reads."""
        spec = TrainingSpec(
            hidden_layers=tuple(check_int_list(self, "hiddenLayers")),
            conv_layers=tuple(check_int_list(self, "convLayers")),
            input_shape=tuple(check_int_list(self, "inputShape")),
            activation=check_choice(self, "activation", ACTIVATIONS),
            optimizer=check_choice(self, "optimizer", OPTIMIZERS),
            learning_rate=check_float_range(self, "learningRate", 0.0, None, closed="neither"),
            batch_size=check_int_range(self, "batchSize", 1),
            epochs=check_int_range(self, "epochs", 1),
            dropout=check_float_range(self, "dropout", 0.0, 1.0, closed="left"),
            validation_split=check_float_range(self, "validationSplit", 0.0, 1.0, closed="left"),
            early_stopping_patience=check_int_range(self, "earlyStoppingPatience", 0),
            class_count=check_int_range(self, "classCount", 0),
            standardization=bool(self.getStandardization()),
            keras_model=self.getKerasModel(),
            batch_normalization=bool(self.getBatchNormalization()),
            augment_shift=check_float_range(self, "augmentShift", 0.0, 0.5, closed="left"),
            augment_rotation=check_float_range(self, "augmentRotation", 0.0, 180.0),
            learning_rate_schedule=check_choice(
                self, "learningRateSchedule", LEARNING_RATE_SCHEDULES
            ),
            seed=int(self.getSeed()),
            num_workers=check_int_range(self, "numWorkers", 1),
        )
        check_int_range(self, "predictBatchSize", 1)
        check_int_range(self, "maxBroadcastBytes", 0)
        shape = list(spec.input_shape)
        if spec.augmented and len(shape) not in (2, 3):
            raise ValueError(
                "The 'augmentShift' and 'augmentRotation' params of TFClassifier need "
                "'inputShape' ([height, width] or [height, width, channels]) to see features as "
                f"images. Got inputShape={shape} instead."
            )
        if spec.batch_size % spec.num_workers:
            raise ValueError(
                "The 'batchSize' param of TFClassifier is the global batch of all numWorkers "
                f"workers and must be a multiple of numWorkers={spec.num_workers}, so that each "
                f"worker trains on the same number of rows per step. Got batchSize="
                f"{spec.batch_size} instead."
            )
        if spec.class_count == 1:
            raise ValueError(
                "The 'classCount' param of TFClassifier must be 0 (infer) or an int >= 2. "
                "Got 1 instead."
            )
        if spec.conv_layers and not shape and not spec.keras_model:
            raise ValueError(
                "The 'convLayers' param of TFClassifier needs 'inputShape' (e.g. [28, 28, 1]) "
                "to reshape flat features into images. Got convLayers="
                f"{list(spec.conv_layers)} and inputShape=[] instead."
            )
        if spec.conv_layers and len(shape) not in (2, 3):
            raise ValueError(
                "The 'inputShape' param of TFClassifier must have 2 or 3 dimensions "
                "([height, width] or [height, width, channels]) when convLayers is set. "
                f"Got {shape} instead."
            )
        return spec
