"""What the driver hands a training task: small frozen dataclasses, pickled into the task.

:class:`TrainingSpec` is one param map of a TFClassifier, checked and resolved on the driver
(:meth:`sparktf._classifier_params._TFClassifierParams._training_spec`); :class:`TrainingData`
is the training data of one ``fit``/``fitMultiple`` call, either collected rows or the staged
files every task streams (:mod:`sparktf.training._data`, :mod:`sparktf.training._staging`). The task
side reads them in :mod:`sparktf.training._training` and hands back a :class:`TrainingResult`.
Nothing here imports Spark or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

__all__ = [
    "DEFAULT_SEED",
    "Segment",
    "Trainable",
    "TrainingData",
    "TrainingResult",
    "TrainingSpec",
    "WorkerResult",
]

#: The seed of every stage that has not been given one, so that a run can be repeated.
DEFAULT_SEED = 20161112


@dataclass(frozen=True)
class TrainingSpec:
    """The resolved training Params of one param map (names as the Params, snake_case).

    Built only from a stage's checked Params, whose declarations hold the defaults
    (:data:`sparktf._classifier_params.DECLARED`); ``training_spec(**params)`` there builds one
    from Param keywords.
    """

    hidden_layers: tuple[int, ...]
    conv_layers: tuple[int, ...]
    input_shape: tuple[int, ...]
    activation: str
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    dropout: float
    validation_split: float
    early_stopping_patience: int
    class_count: int
    standardization: bool
    keras_model: str
    keras_model_output: str
    batch_normalization: bool
    augment_shift: float
    augment_rotation: float
    learning_rate_schedule: str
    seed: int
    num_workers: int
    image_size: tuple[int, ...] = ()
    image_channels: int = 3
    image_scaling: str = "standardize"
    augment_flip: bool = False
    augment_zoom: float = 0.0
    # A pretrained base (sparktf._transfer_params; the network in sparktf.training._transfer)
    base_model: str = ""
    feature_layer: str = ""
    trainable_layers: int = 0
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-5

    @property
    def augmented(self) -> bool:
        return (
            self.augment_shift > 0
            or self.augment_rotation > 0
            or self.augment_flip
            or self.augment_zoom > 0
        )

    @property
    def total_epochs(self) -> int:
        """The whole budget of epochs: ``epochs``, then ``fineTuneEpochs`` with a base."""
        return self.epochs + (self.fine_tune_epochs if self.base_model else 0)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The training data a task reads: collected arrays, or staged files to stream.

    Collected: ``x`` (rows x features, uint8 when every value is a whole number in 0..255,
    else float32), ``y`` (int labels) and ``val_mask`` (held-out rows, from
    ``validationIndicatorCol``). Staged: ``staged`` (the folder of Parquet files), ``rows`` (how
    many rows it holds) and ``has_indicator`` (a held-out column ``v`` is staged). An image
    column (``image_kind``: ``image_bytes``, ``image_struct`` or ``image_path``, as the
    transform engine names them; ``image_column`` its name) travels as ``x``, an object array
    of its encoded bytes, image structs (dicts) or paths, with ``image_names`` (a path per row,
    or None) for messages; the tasks decode it (:mod:`sparktf.training._image_pipeline`).
    ``bases`` maps each ``baseModel`` of the call to the ``.keras`` bytes read on the driver
    (:mod:`sparktf.training._bases`), so they travel once with the data, not in every spec.
    """

    num_features: int
    num_classes: int
    x: Any = None
    y: Any = None
    val_mask: Any = None
    staged: str | None = None
    rows: int = 0
    has_indicator: bool = False
    image_kind: str = ""
    image_column: str = ""
    image_names: Any = None
    bases: Any = None


@dataclass(frozen=True, eq=False)
class Segment:
    """A part of one training: epochs ``initial_epoch`` to ``epochs`` of the spec's budget.

    ``start`` is the ``.keras`` bytes (weights and optimizer state) the part continues from,
    or None to build the model afresh; ``start_logits`` tells whether that model outputs
    logits. ``time_limit`` (seconds, None for none) stops the training at the end of the first
    epoch that finishes past it. The learning-rate schedule always spans the spec's full
    ``epochs``, so a training done in parts follows the schedule of one done in one go. With
    a pretrained base and ``fineTuneEpochs``, the budget is ``epochs + fineTuneEpochs`` and a
    part that reaches epoch ``epochs`` switches to the fine-tuning phase there. (Used by the
    successive-halving search, :mod:`sparktf.search`.)
    """

    initial_epoch: int = 0
    epochs: int | None = None
    start: bytes | None = None
    start_logits: bool = True
    time_limit: float | None = None


class _Trained(TypedDict):
    """The keys every :class:`TrainingResult` has."""

    index: int
    """The param map's position in its ``fit``/``fitMultiple`` call."""
    model: bytes | None
    """The trained network as ``.keras`` bytes, None when the training failed."""
    error: str | None
    history: dict[str, list[float]]
    """Keras' metrics per epoch (``loss``, ``accuracy``, ``val_loss``, ...)."""
    seconds: float
    """Wall time of the training, setup included."""
    worker: dict[str, Any]
    """Where and how it ran: host, process, threads, timing, peak memory, and for a
    multi-worker fit the job group and one such record per worker (``workers``)."""


class TrainingResult(_Trained, total=False):
    """What one training returns to the driver, on one task or merged from several workers'.

    A failed trial is a result, never a raised error: ``error`` says why and ``model`` is None.
    Built by :func:`sparktf.training._training.train_one` (one task) and
    :func:`sparktf.training._multiworker.train_on_workers` (one barrier stage); the search adds
    its own keys (:class:`sparktf.search._worker.TrialResult`).
    """

    outputsLogits: bool
    """Whether the network's last layer gives logits (a softmax follows at transform)."""
    timedOut: bool
    """Whether a time limit stopped the training before its last epoch."""
    traceback: str
    """Where the training failed, for a failure that was an exception."""
    image: dict[str, Any]
    """For an image column: how the transform decodes it (``kind``, ``size``, ``channels``)."""


class WorkerResult(TypedDict, total=False):
    """What one worker process of a multi-worker fit hands back to its barrier task.

    Every worker has its ``history`` (the all-reduced metrics), shard and timing; only rank 0's
    carries the ``model``. The task adds ``worker`` (where it ran) before the driver merges the
    workers' results into one :class:`~sparktf.training._plans.TrainingResult`.
    """

    rank: int
    error: str | None
    history: dict[str, list[float]]
    model: bytes | None
    outputsLogits: bool
    image: dict[str, Any]
    timing: dict[str, float]
    rowsRead: int
    shardRows: int
    weightsDigest: str
    traceback: str
    peakRssMiB: float | None
    seconds: float
    worker: dict[str, Any]


@runtime_checkable
class Trainable(Protocol):
    """What the driver's training modules (:mod:`sparktf.training._trials`, :mod:`sparktf.search`)
    ask of a TFClassifier, and all they ask: its checked plans, its strictness, its trial book
    and a model made from a training's result. They take the estimator as this, so they never
    import the stage."""

    uid: str

    def _training_spec(self) -> TrainingSpec:
        """The checked training Params of the stage's param map."""
        ...

    def _data_spec(self) -> Any:
        """Which columns a fit reads, and how (a :class:`sparktf.training._data.DataSpec`)."""
        ...

    _trial_book: Any
    """Where the classifier's trials are written (:class:`sparktf.training._book.TrialBook`)."""

    def _model_from_result(self, result: TrainingResult, data: TrainingData, param_map: dict):
        """The fitted model of one training's result; it can ``_keep_search(search)``."""
        ...

    def getFailOnTrialError(self) -> bool: ...

    def isSet(self, param: Any) -> bool: ...

    def getOrDefault(self, param: Any) -> Any: ...

    def getNumWorkers(self) -> int: ...

    def getMlflowExperiment(self) -> str: ...

    def fitMultiple(self, dataset: Any, paramMaps: Any) -> Any: ...
