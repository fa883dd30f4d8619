"""What the driver hands a training task: small frozen dataclasses, pickled into the task.

:class:`TrainingSpec` is one param map of a TFClassifier, checked and resolved on the driver
(:meth:`sparktf._classifier_params._TFClassifierParams._training_spec`); :class:`TrainingData`
is the training data of one ``fit``/``fitMultiple`` call, either collected rows or the staged
files every task streams (:mod:`sparktf._data`, :mod:`sparktf._staging`). The task side reads
them in :mod:`sparktf._training`. Nothing here imports Spark or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Segment", "TrainingData", "TrainingSpec"]


@dataclass(frozen=True)
class TrainingSpec:
    """The resolved training Params of one param map (names as the Params, snake_case)."""

    hidden_layers: tuple[int, ...] = (128, 64)
    conv_layers: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = ()
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 0.001
    batch_size: int = 32
    epochs: int = 30
    dropout: float = 0.1
    validation_split: float = 0.0
    early_stopping_patience: int = 0
    class_count: int = 0
    standardization: bool = True
    keras_model: str = ""
    batch_normalization: bool = False
    augment_shift: float = 0.0
    augment_rotation: float = 0.0
    learning_rate_schedule: str = "constant"
    seed: int = 20161112
    num_workers: int = 1

    @property
    def augmented(self) -> bool:
        return self.augment_shift > 0 or self.augment_rotation > 0


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The training data a task reads: collected arrays, or staged files to stream.

    Collected: ``x`` (rows x features, uint8 when every value is a whole number in 0..255,
    else float32), ``y`` (int labels) and ``val_mask`` (held-out rows, from
    ``validationIndicatorCol``). Staged: ``staged`` (the folder of Parquet files), ``rows`` (how
    many rows it holds) and ``has_indicator`` (a held-out column ``v`` is staged).
    """

    num_features: int
    num_classes: int
    x: Any = None
    y: Any = None
    val_mask: Any = None
    staged: str | None = None
    rows: int = 0
    has_indicator: bool = False


@dataclass(frozen=True, eq=False)
class Segment:
    """A part of one training: epochs ``initial_epoch`` to ``epochs`` of the spec's budget.

    ``start`` is the ``.keras`` bytes (weights and optimizer state) the part continues from,
    or None to build the model afresh; ``start_logits`` tells whether that model outputs
    logits. ``time_limit`` (seconds, None for none) stops the training at the end of the first
    epoch that finishes past it. The learning-rate schedule always spans the spec's full
    ``epochs``, so a training done in parts follows the schedule of one done in one go. (Used
    by the successive-halving search, :mod:`sparktf.search`.)
    """

    initial_epoch: int = 0
    epochs: int | None = None
    start: bytes | None = None
    start_logits: bool = True
    time_limit: float | None = None
