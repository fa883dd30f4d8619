"""TFClassifier and TFClassificationModel: a Keras classifier as a pyspark.ml Estimator.

Every hyperparameter is a Param, so ``ParamGridBuilder`` + ``CrossValidator`` or
``TrainValidationSplit`` tune it. Training runs inside Spark tasks on executors: the features and
labels are collected once through Arrow and broadcast, and :meth:`TFClassifier.fitMultiple`
trains all param maps of one call as one Spark job, one task per param map (one job per data
setting when the grid tunes the columns a fit reads).

TensorFlow is imported only on executors (and on the driver only by the single-row
``predict*`` methods), never by importing this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pyspark.ml.classification import (
    ProbabilisticClassificationModel,
    ProbabilisticClassifier,
)
from pyspark.ml.linalg import DenseVector, Vector, VectorUDT
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable, MLReadable, MLWritable
from pyspark.sql import DataFrame

from sparktf._classifier_params import (
    LEARNING_RATE_SCHEDULES,
    OPTIMIZERS,
    _TFClassifierParams,
)
from sparktf._model_input import feature_row, trained_input, transform_input
from sparktf._spark import LastShared
from sparktf.errors import (
    DriverMemoryError,
    NotEnoughSlotsError,
    TrainingError,
    TrialFailedError,
)
from sparktf.inference._scoring import apply_thresholds, check_thresholds, raw_and_probability
from sparktf.param import check_int_range
from sparktf.param.declare import declare_model, declare_stage
from sparktf.training._book import KeepsTrials
from sparktf.training._plans import TrainingData, TrainingResult
from sparktf.training._trials import TrialIterator, fit_one, trial_scope

__all__ = [
    "LEARNING_RATE_SCHEDULES",
    "OPTIMIZERS",
    "DriverMemoryError",
    "NotEnoughSlotsError",
    "TFClassificationModel",
    "TFClassifier",
    "TrainingError",
    "TrialFailedError",
    "trial_scope",
]


@declare_stage
class TFClassifier(
    KeepsTrials,
    ProbabilisticClassifier,
    _TFClassifierParams,
    DefaultParamsWritable,
    DefaultParamsReadable,
):
    """A Keras neural-network classifier trained inside Spark tasks.

    Input: ``featuresCol`` as an ml Vector (dense or sparse) or array of numbers, or images
    (encoded bytes, Spark image structs or paths, resized to ``imageSize``); ``labelCol``
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

    Fitting (``clf.fit(df)``) trains in one Spark task, or with ``numWorkers=k`` on ``k`` tasks
    at once (one barrier stage, data-parallel); ``fitMultiple`` (used by ``CrossValidator`` and
    ``TrainValidationSplit``) trains every param map of a grid as one Spark job, one task per
    param map (a map with ``numWorkers > 1`` as a barrier stage of its own).
    """

    # __init__(**params) and setParams(**params) come from declare_stage.

    def _set(self, **kwargs: Any):
        # A None seed is refused, not ignored: ignoring it would keep the fixed default seed
        # without a word.
        if "seed" in kwargs and kwargs["seed"] is None:
            raise TypeError(
                "The 'seed' param of TFClassifier must be an int. Got seed=None instead: sparktf "
                "has a fixed default seed so that a fit can be repeated; for a different random "
                "start, pass another int, e.g. seed=random.randrange(2**31)."
            )
        return super()._set(**kwargs)

    def write(self):
        """An ``MLWriter`` for this estimator (its Params), on classic Spark and Connect."""
        from sparktf.persistence import ParamsWriter

        return ParamsWriter(self)

    # -- training ----------------------------------------------------------------------------

    def _fit(self, dataset: DataFrame) -> TFClassificationModel:
        # A failure raises TrainingError, unless this fit is a trial of a trial_scope.
        return fit_one(self, dataset)

    def fitMultiple(
        self, dataset: DataFrame, paramMaps: Sequence[dict]
    ) -> Iterator[tuple[int, TFClassificationModel]]:
        """Fit one model per param map as one Spark job, one task per param map (one job per data
        setting when a grid tunes the data Params, below).

        Returns a thread-safe iterator of ``(index, model)`` as pyspark's contract asks. The job
        runs on the first ``next()``; later calls hand out the models, and a failure of the job
        is re-raised by every later call rather than retraining. A trial that fails (an
        exception, or a NaN/inf loss) yields a model whose ``trainingFailure`` holds the error and
        which scores worst on every evaluator metric; if every trial fails, :class:`TrainingError`
        is raised. With ``failOnTrialError=True`` the first failure raises
        :class:`TrialFailedError` and cancels the job. (A plain ``fit``, such as a validator's
        refit of the chosen map, raises :class:`TrainingError` when it fails; for a TFClassifier
        inside a Pipeline, see :func:`sparktf.classification.trial_scope`.)

        Each map trains on the columns its own Params name: a grid that tunes the data Params
        (``featuresCol``, ``labelCol``, ``validationIndicatorCol``, ``classCount``,
        ``inputShape``, ``maxBroadcastBytes``, ``stagingDir``) is grouped by data setting, and
        each setting's data is read once and trained as one job of its own.
        """
        estimators = [self.copy(pm) for pm in paramMaps]
        specs = [est._training_spec() for est in estimators]  # bad values raise before any job
        return TrialIterator(self, dataset, list(paramMaps), estimators, specs)

    def _model_from_result(
        self, result: TrainingResult, data: TrainingData, param_map: dict
    ) -> TFClassificationModel:
        image, num_features = trained_input(result, data)
        model = TFClassificationModel._create(
            model_bytes=result["model"],
            num_features=num_features,
            num_classes=int(data.num_classes),
            outputs_logits=bool(result.get("outputsLogits", True)),
            history={
                "epochs": result.get("history", {}),
                "seconds": result["seconds"],
                "worker": result.get("worker", {}),
                "error": result["error"],
            },
            image=image,
        )
        # As pyspark's estimators do: the map's values of this classifier's own Params (matched
        # by Param, not by name, so another stage's Param of the same name is not applied).
        self._copyValues(model, param_map)
        return model


@declare_model
class TFClassificationModel(
    ProbabilisticClassificationModel, _TFClassifierParams, MLWritable, MLReadable
):
    """A fitted :class:`TFClassifier`: a trained Keras network and the Params it was trained with.

    ``transform`` appends ``rawPrediction`` (row-centred logits: ``[-m, m]`` for two classes) and
    ``probability`` as ml Vectors and ``prediction`` as double, keeping the input columns. It
    runs the pandas UDF of :class:`~sparktf.TFGraphTransformer`'s engine: the model is shipped
    once, loaded once per Python worker, and applied in batches of ``predictBatchSize`` rows.

    As on MLlib's models, the Params that act at transform time have setters (the output
    columns, ``featuresCol``, ``thresholds``, ``predictBatchSize``, ``freezeModel``); the
    training Params are read-only records of the fit.
    """

    def __init__(self) -> None:
        super().__init__()
        self._model_bytes: bytes | None = None
        self._num_features = -1
        self._num_classes = -1
        self._outputs_logits = True
        self._history: dict[str, Any] = {}
        self._local_model = None
        self._shipped = LastShared()
        self._spec = None  # the model's spec, hashed from its bytes once (see _model_spec)
        self._image: dict[str, Any] | None = None  # an image column's kind, size, channels
        # A failed trial's: admits its validator's evaluation (training._trials.EvaluationPass)
        self._trial_pass = None

    @classmethod
    def _create(
        cls,
        model_bytes: bytes | None,
        num_features: int,
        num_classes: int,
        outputs_logits: bool,
        history: dict[str, Any],
        image: dict[str, Any] | None = None,
    ) -> TFClassificationModel:
        model = cls()
        model._image = image
        model._model_bytes = model_bytes
        model._num_features = num_features
        model._num_classes = num_classes
        model._outputs_logits = outputs_logits
        model._history = history
        return model

    def copy(self, extra: dict | None = None) -> TFClassificationModel:
        that = super().copy(extra)
        that._shipped = LastShared()
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
        and executor JVM that trained it. The model a validator refit after its search also has
        ``history["search"]``: the search's trials (each map's seconds and failure), which
        :func:`~sparktf.tuning.tuning_report` reads, also after ``load``.
        """
        return json.loads(json.dumps(self._history))

    def _keep_search(self, search: dict[str, Any]) -> None:
        """Keep the trials of the search whose refit this model is (``history["search"]``)."""
        self._history = {**self._history, "search": search}

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

    def _require_model(self, why: str = "") -> None:
        if self._model_bytes is None:
            raise TrainingError(
                "This TFClassificationModel holds no trained network: its training failed with: "
                f"{self.trainingFailure}{why}"
            )

    # -- single-row prediction (driver side) --------------------------------------------------

    def _scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(self.keras_model()(x, training=False), dtype=np.float64)
        return raw_and_probability(out, self._outputs_logits)

    def _as_row(self, value: Vector) -> np.ndarray:
        return feature_row(self, value)

    def predictRaw(self, value: Vector) -> Vector:
        """Raw scores (row-centred logits, as ``rawPrediction``) for one feature vector."""
        raw, _ = self._scores(self._as_row(value))
        return DenseVector(raw[0])

    def predictProbability(self, value: Vector) -> Vector:
        """Class probabilities for one feature vector."""
        _, prob = self._scores(self._as_row(value))
        return DenseVector(prob[0])

    def predict(self, value: Vector) -> float:
        """Predicted class index for one feature vector."""
        _, prob = self._scores(self._as_row(value))
        return float(apply_thresholds(prob, self._thresholds())[0])

    def _thresholds(self) -> list[float] | None:
        if not self.isDefined(self.thresholds):
            return None
        return check_thresholds(self.getThresholds(), self._num_classes)

    # -- transform ----------------------------------------------------------------------------

    def _output_columns(self) -> list[tuple[str, str]]:
        return [
            (self.getRawPredictionCol(), "raw"),
            (self.getProbabilityCol(), "probability"),
            (self.getPredictionCol(), "prediction"),
        ]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        features = self.getFeaturesCol()
        image = transform_input(self, dataset, features)
        thresholds = self._thresholds()
        check_int_range(self, "predictBatchSize", 1)
        outputs = [(name, field) for name, field in self._output_columns() if name]
        clash = [name for name, _ in outputs if name in dataset.columns]
        if clash:
            raise ValueError(
                f"TFClassificationModel would overwrite existing column(s) {clash}; set "
                "rawPredictionCol/probabilityCol/predictionCol to new names."
            )
        # The transformer's engine runs it: a one-input plan with the classifier's head.
        from sparktf.inference._driver import failed_trial_scores, scores_plan

        if self._model_bytes is None:
            # Worst scores on purpose, for the validator that ranks this failed trial; any other
            # transform raises (see sparktf.training._trials).
            if self._trial_pass is None or not self._trial_pass.admit():
                self._require_model(
                    " (A failed trial's model scores worst only in its validator's evaluation; "
                    "it has no predictions to give elsewhere.)"
                )
            if self.getLabelCol() not in dataset.columns:
                self._require_model()
            return failed_trial_scores(dataset, self.getLabelCol(), self._num_classes, outputs)
        from sparktf.inference._udf import apply_plan, ship_model

        plan = scores_plan(
            type(self).__name__,
            features,
            isinstance(dataset.schema[features].dataType, VectorUDT),
            self._num_features,
            outputs,
            self._outputs_logits,
            thresholds,
            self.getPredictBatchSize(),
            self._model_spec(),
            freeze=bool(self.getFreezeModel()),
            image=image,
        )
        handle = ship_model(self._shipped, dataset.sparkSession, plan.model.key, self._model_bytes)
        return apply_plan(dataset, plan, handle)

    def _model_spec(self):
        """The spec the workers load the model by; its key hashes the model's bytes, so it is
        made once and again only when the unsafe-loading opt-in changes (it enters the key)."""
        from sparktf._loading import unsafe_loading_allowed
        from sparktf.inference._driver import bytes_model_spec

        assert self._model_bytes is not None
        if self._spec is None or self._spec.unsafe != unsafe_loading_allowed():
            self._spec = bytes_model_spec(self._model_bytes, "keras")
        return self._spec

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
