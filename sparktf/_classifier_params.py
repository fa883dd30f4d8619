"""The Params of TFClassifier and TFClassificationModel, their checks, and the training spec.

``_TFClassifierParams`` is the mixin both stages share (as pyspark's ``_...Params`` classes
are); :meth:`_TFClassifierParams._training_spec` resolves one param map into the
``TrainingSpec`` a training task reads (:mod:`sparktf.training._training`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.ml.classification import _ProbabilisticClassifierParams
from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import (
    HasBatchSize,
    HasLearningRate,
    HasSeed,
    HasStandardization,
    HasValidationIndicatorCol,
)

from sparktf._image_params import IMAGE_DECLARED
from sparktf._transfer_params import TRANSFER_DECLARED
from sparktf.inference._scoring import check_thresholds
from sparktf.param.declare import (
    Choice,
    Declared,
    FloatRange,
    IntList,
    IntRange,
    checked_values,
    declare_params,
)
from sparktf.training._data import DEFAULT_MAX_BROADCAST_BYTES, DataSpec
from sparktf.training._networks import keras_architecture
from sparktf.training._plans import DEFAULT_SEED, TrainingSpec

__all__ = ["ACTIVATIONS", "LEARNING_RATE_SCHEDULES", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam")
ACTIVATIONS = ("relu", "elu", "gelu", "selu", "tanh", "sigmoid", "swish")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")


def _camel(field: str) -> str:
    """The Param a TrainingSpec field resolves (``hidden_layers``: ``hiddenLayers``)."""
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thresholds_check(stage: Any, name: str) -> list[float] | None:
    """The declared check of ``thresholds``: MLlib's rule on its values, when it is set (the
    count against the classes is checked where K is known, at transform)."""
    if not stage.isDefined(name):
        return None
    return check_thresholds(stage.getOrDefault(name), None, type(stage).__name__)


#: Every Param of TFClassifier, in the order of its keywords: one declaration each.
DECLARED = (
    Declared("featuresCol", default="features", kind="str", at_transform=True),
    Declared("labelCol", default="label", kind="str"),
    Declared("predictionCol", default="prediction", kind="str", at_transform=True),
    Declared("probabilityCol", default="probability", kind="str", at_transform=True),
    Declared("rawPredictionCol", default="rawPrediction", kind="str", at_transform=True),
    Declared(
        "hiddenLayers",
        "neurons per hidden dense layer, in order (list of ints >= 1; empty: no hidden layer)",
        TypeConverters.toListInt,
        [128, 64],
        IntList(1),
        "list[int]",
    ),
    Declared(
        "convLayers",
        "filters per 3x3 convolution block (convolution, then 2x2 max pooling), in order "
        "(list of ints >= 1); empty means a plain multilayer perceptron. Needs inputShape",
        TypeConverters.toListInt,
        [],
        IntList(1),
        "list[int]",
    ),
    Declared(
        "inputShape",
        "shape each flat feature vector is reshaped to before the network, e.g. [28, 28, 1] "
        "(list of ints >= 1 whose product is the number of features; empty: keep flat)",
        TypeConverters.toListInt,
        [],
        IntList(1),
        "list[int]",
    ),
    Declared(
        "activation",
        "activation of hidden and convolution layers (one of: " + ", ".join(ACTIVATIONS) + ")",
        TypeConverters.toString,
        "relu",
        Choice(ACTIVATIONS),
        "str",
    ),
    Declared(
        "optimizer",
        "training optimizer (one of: " + ", ".join(OPTIMIZERS) + ")",
        TypeConverters.toString,
        "adam",
        Choice(OPTIMIZERS),
        "str",
    ),
    Declared("learningRate", default=0.001, check=FloatRange(0.0, None, "neither"), kind="float"),
    Declared("batchSize", default=32, check=IntRange(1), kind="int"),
    Declared(
        "epochs",
        "maximum number of passes over the training data (int >= 1)",
        TypeConverters.toInt,
        30,
        IntRange(1),
        "int",
    ),
    Declared(
        "dropout",
        "dropout rate after each hidden dense layer (float in [0, 1))",
        TypeConverters.toFloat,
        0.1,
        FloatRange(0.0, 1.0, "left"),
        "float",
    ),
    Declared(
        "validationSplit",
        "fraction of the training rows held out (at random, by seed) for validation metrics and "
        "early stopping (float in [0, 1)); ignored when validationIndicatorCol is set",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0, 1.0, "left"),
        "float",
    ),
    Declared("validationIndicatorCol", kind="str | None"),
    Declared(
        "earlyStoppingPatience",
        "stop after this many epochs without improvement of the validation loss (of the "
        "training loss when there is no validation data) and keep the best weights "
        "(int >= 0; 0 disables early stopping)",
        TypeConverters.toInt,
        0,
        IntRange(0),
        "int",
    ),
    Declared(
        "classCount",
        "number of classes K; labels must be integers in [0, K) (int >= 0; 0 infers K as the "
        "largest label + 1)",
        TypeConverters.toInt,
        0,
        IntRange(0),
        "int",
    ),
    Declared("standardization", default=True, kind="bool"),
    Declared(
        "kerasModel",
        "a user architecture replacing the built-in family: a Keras model or its JSON "
        "(keras.Model.to_json()), taking the (standardized, reshaped) features and returning K "
        "logits or K probabilities (see kerasModelOutput). Built-in layers only. Empty: use "
        "hiddenLayers/convLayers",
        keras_architecture,
        "",
        kind="Any",
        keep_none=True,  # None clears it, from setParams as from setKerasModel (see _set)
    ),
    Declared(
        "kerasModelOutput",
        "what the K scores of kerasModel are (one of: auto, logits, probabilities); auto: "
        "probabilities when its output is a softmax (a Softmax layer, Activation('softmax') "
        "or a layer with activation='softmax', also inside nested models) or gives "
        "non-negative rows summing to 1 on a probe batch, else logits. Ignored without "
        "kerasModel (the built-in family outputs logits)",
        TypeConverters.toString,
        "auto",
        Choice(("auto", "logits", "probabilities")),
        "str",
    ),
    Declared(
        "predictBatchSize",
        "rows per TensorFlow call when predicting in transform (int >= 1)",
        TypeConverters.toInt,
        1024,
        IntRange(1),
        "int",
        at_transform=True,
    ),
    Declared(
        "freezeModel",
        "if true, transform runs the trained network as a frozen graph (its variables folded "
        "into constants, as TFGraphTransformer's freezeModel does): faster per batch for some "
        "networks, for a one-time cost of up to a few seconds in each Python worker",
        TypeConverters.toBoolean,
        False,
        kind="bool",
        at_transform=True,
    ),
    Declared(
        "failOnTrialError",
        "strict mode for searches: if true, fitMultiple raises as soon as one trial fails; if "
        "false, a failed trial is recorded and its model scores worst on every metric",
        TypeConverters.toBoolean,
        False,
        kind="bool",
    ),
    Declared(
        "batchNormalization",
        "batch normalization after each convolution and each hidden dense layer, before the "
        "activation (bool)",
        TypeConverters.toBoolean,
        False,
        kind="bool",
    ),
    Declared(
        "augmentShift",
        "training-time augmentation: shift each image at random by up to this fraction of its "
        "height and width (float in [0, 0.5); 0: off). Needs inputShape; never applied when "
        "predicting",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0, 0.5, "left"),
        "float",
    ),
    Declared(
        "augmentRotation",
        "training-time augmentation: rotate each image at random by up to this many degrees "
        "either way (float in [0, 180]; 0: off). Needs inputShape; never applied when predicting",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0, 180.0),
        "float",
    ),
    Declared(
        "learningRateSchedule",
        "how the learning rate changes during training (one of: constant, cosine; cosine "
        "decays it from learningRate to 0 over all epochs)",
        TypeConverters.toString,
        "constant",
        Choice(LEARNING_RATE_SCHEDULES),
        "str",
    ),
    Declared(
        "maxBroadcastBytes",
        "training data up to this size (rows x (4 x features + 8) bytes) is collected on the "
        "driver and broadcast to the training tasks; larger data is staged as Parquet files "
        "under stagingDir, which every task streams (int >= 0; 0 always stages)",
        TypeConverters.toInt,
        DEFAULT_MAX_BROADCAST_BYTES,
        IntRange(0),
        "int",
    ),
    Declared(
        "stagingDir",
        "folder for staged training data, readable by every executor on a cluster (HDFS, S3, "
        "a shared mount); empty: the Spark conf spark.sparktf.stagingDir, else a temporary "
        "folder when the master is local. Staged files are removed after the job",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "numWorkers",
        "Spark tasks that train one model together, data-parallel: one barrier stage whose "
        "tasks each read their shard of the rows and apply the same averaged gradients (int "
        ">= 1; 1: one task per model). batchSize is the global batch, split evenly among them",
        TypeConverters.toInt,
        1,
        IntRange(1),
        "int",
    ),
    Declared("thresholds", check=_thresholds_check, kind="list[float] | None", at_transform=True),
    # A fixed default, so runs are reproducible unless a seed is set.
    Declared("seed", default=DEFAULT_SEED, check=IntRange(), kind="int", keep_none=True),
    *IMAGE_DECLARED,
    *TRANSFER_DECLARED,  # baseModel and its fine-tuning (sparktf._transfer_params)
    Declared(
        "mlflowExperiment",
        "MLflow experiment each fit is tracked in (created if missing; the tracking URI from "
        "MLflow's environment): one run per trained map with its Params, per-epoch metrics, "
        "seconds and outcome, nested under the active MLflow run if there is one. Needs the "
        "mlflow package ('': not tracked)",
        TypeConverters.toString,
        "",
        kind="str",
    ),
)


@declare_params(*DECLARED)
class _TFClassifierParams(
    _ProbabilisticClassifierParams,
    HasSeed,
    HasBatchSize,
    HasLearningRate,
    HasStandardization,
    HasValidationIndicatorCol,
):
    """Params shared by :class:`TFClassifier` and :class:`TFClassificationModel`."""

    def _set(self, **kwargs: Any):
        # pyspark's _set stores a None without its type converter; kerasModel=None means what
        # the converter makes of it (the built-in family), however it is set.
        if "kerasModel" in kwargs and kwargs["kerasModel"] is None:
            kwargs["kerasModel"] = keras_architecture(None)
        return super()._set(**kwargs)

    # -- driver-side checks -------------------------------------------------------------------

    def _data_spec(self) -> DataSpec:
        """Which columns a fit reads, and how (see :mod:`sparktf.training._data`).

        Small data is collected and broadcast; data above ``maxBroadcastBytes`` is staged as
        files, removed when the fit ends, whether training succeeded or not.
        """
        indicator = (
            self.getOrDefault(self.validationIndicatorCol)
            if self.isDefined(self.validationIndicatorCol)
            else None
        )
        return DataSpec(
            stage=type(self).__name__,
            features=self.getFeaturesCol(),
            label=self.getLabelCol(),
            indicator=indicator or None,
            class_count=self.getClassCount(),
            input_shape=tuple(self.getInputShape()),
            max_broadcast_bytes=self.getMaxBroadcastBytes(),
            staging_dir=self.getStagingDir(),
            seed=int(self.getSeed()),
            workers=self.getNumWorkers(),
        )

    def _training_spec(self) -> TrainingSpec:
        """Check every training Param and resolve them into the plan a training task reads."""
        values = checked_values(self)  # every declared check, before any job
        spec = TrainingSpec(
            **{
                field.name: _frozen(values.get(name, self.getOrDefault(name)))
                for field in dataclasses.fields(TrainingSpec)
                for name in [_camel(field.name)]
            }
        )
        shape = list(spec.input_shape)
        if spec.augmented and len(shape) not in (2, 3) and not (spec.image_size or spec.base_model):
            raise ValueError(
                "The 'augmentShift' and 'augmentRotation' params (and augmentFlip, augmentZoom) "
                "of TFClassifier need 'inputShape' ([height, width] or [height, width, channels])"
                f" to see features as images, or imageSize for an image column. Got inputShape="
                f"{shape} instead."
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
        if spec.conv_layers and not (shape or spec.keras_model or spec.image_size):
            raise ValueError(
                "The 'convLayers' param of TFClassifier needs 'inputShape' (e.g. [28, 28, 1]) "
                "to reshape flat features into images, or imageSize for an image column. Got "
                f"convLayers={list(spec.conv_layers)} and inputShape=[] instead."
            )
        if spec.conv_layers and len(shape) not in (2, 3) and not spec.image_size:
            raise ValueError(
                "The 'inputShape' param of TFClassifier must have 2 or 3 dimensions "
                "([height, width] or [height, width, channels]) when convLayers is set. "
                f"Got {shape} instead."
            )
        return spec


def training_spec(**params: Any) -> TrainingSpec:
    """The checked TrainingSpec of TFClassifier Params given as keywords (defaults elsewhere),
    for code that trains without a stage, such as benchmarks and tests of the network."""
    stage = _TFClassifierParams()
    stage._set(**params)
    return stage._training_spec()
