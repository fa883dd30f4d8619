"""What one task of a search runs: one trial (a param map on one fold) through one rung.

The task slices its fold's training rows out of the shared data, continues the trial's model
from the rung before (or builds it in the first rung), trains it up to the rung's epochs with
:func:`sparktf.training._training.train_one`, scores the rows held out of its training with the
search's metric, and, when the search has a checkpoint folder, writes the trial there before
returning. TensorFlow is imported only inside functions; nothing here holds a Spark driver object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from sparktf.search._checkpoints import CheckpointDir
from sparktf.search._metrics import MetricSpec, score, worst_score
from sparktf.training._plans import Segment, TrainingData, TrainingResult, TrainingSpec

__all__ = ["SearchData", "TrialResult", "TrialTask", "digest", "run_trial"]

# Held-out rows are scored in batches of this many rows.
_SCORE_BATCH = 1024


class TrialResult(TrainingResult, total=False):
    """A search task's result: the training's, with the trial's fold, metric and lineage.

    :func:`run_trial` sets every key; ``iterations`` only when a model was trained.
    """

    metric: float
    """The search's metric on the rows held out of the trial's training (the worst on failure)."""
    fold: int
    epochsTrained: int
    """Epochs run over every rung so far (``seconds`` too covers every rung)."""
    trial: str
    """The trial's name: map, fold and epochs (its checkpoint's name)."""
    startedFrom: str | None
    """The digest of the model this rung continued, None for a first rung."""
    modelDigest: str | None
    iterations: int
    """The optimizer's steps so far, for a trained model."""
    fromCheckpoint: bool
    """Set (by the driver) on a trial read back from the search's checkpoint folder."""


# Record fields a checkpoint keeps of a trial (its model is written beside them).
RECORD_FIELDS = (
    "metric",
    "error",
    "timedOut",
    "seconds",
    "history",
    "outputsLogits",
    "iterations",
    "startedFrom",
    "modelDigest",
    "epochsTrained",
)


def digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest()[:16] if data is not None else None


@dataclass(frozen=True, eq=False)
class SearchData:
    """The rows of a search, shared once: the collected training data and each row's fold
    (``folds[i] == k``: row i is held out of fold k's training; -1: always trained on)."""

    data: TrainingData
    folds: np.ndarray


@dataclass(frozen=True)
class TrialTask:
    """One task of a rung: param map ``map_index`` on ``fold``, from ``initial_epoch`` up to
    ``epochs``; ``used`` seconds it already trained, ``time_limit`` its limit in all (None for
    none), ``deadline`` the wall-clock time the search ends (None for none), ``trained`` the
    epochs it ran in earlier rungs (fewer than ``initial_epoch`` after an early stop)."""

    map_index: int
    fold: int
    initial_epoch: int
    epochs: int
    name: str
    used: float = 0.0
    time_limit: float | None = None
    deadline: float | None = None
    trained: int = 0

    def seconds_left(self) -> float | None:
        limits = []
        if self.time_limit is not None:
            limits.append(self.time_limit - self.used)
        if self.deadline is not None:
            limits.append(self.deadline - time.time())
        return max(0.0, min(limits)) if limits else None


def _scores(model, x: np.ndarray, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """The held-out rows' raw scores and probabilities, by the transform's own head
    (``logits`` as the training decided it, :func:`sparktf.training._networks.outputs_logits`)."""
    from sparktf.inference._scoring import raw_and_probability

    out = np.asarray(model.predict(x, batch_size=_SCORE_BATCH, verbose=0), dtype=np.float64)
    return raw_and_probability(out, logits)


def _held_features(data: TrainingData, held: np.ndarray, model) -> np.ndarray:
    """The held-out rows as the model takes them: feature rows, or an image column's rows
    decoded by the training pipeline's decode at the model's input size."""
    if not data.image_kind:
        return np.asarray(data.x[held], dtype=np.float32)
    from sparktf.training._image_pipeline import decode_rows

    shape = tuple(model.input_shape[1:4])
    return decode_rows(data, np.flatnonzero(held), shape).astype(np.float32)


def run_trial(
    task: TrialTask,
    spec: TrainingSpec,
    shared: SearchData,
    metric: MetricSpec,
    start: tuple[bytes, bool] | None,
    checkpoints: CheckpointDir | None,
) -> TrialResult:
    """Train one trial through one rung; never raises for a failed trial."""
    from sparktf.training._training import train_one

    data = shared.data
    held = shared.folds == task.fold
    train = ~held
    y_held = np.asarray(data.y[held])
    names = data.image_names
    fold_data = dataclasses.replace(
        data,
        x=data.x[train],
        y=data.y[train],
        val_mask=None if data.val_mask is None else data.val_mask[train],
        image_names=None if names is None else [n for n, t in zip(names, train, strict=True) if t],
    )
    segment = Segment(
        initial_epoch=task.initial_epoch,
        epochs=task.epochs,
        start=start[0] if start else None,
        start_logits=start[1] if start else True,
        time_limit=task.seconds_left(),
    )

    def after(model, logits: bool) -> dict[str, Any]:
        x_held = _held_features(data, held, model)
        return {
            "metric": score(metric, y_held, *_scores(model, x_held, logits)),
            "iterations": int(model.optimizer.iterations),
        }

    # the keys of a TrialResult that are not the training's come from ``after`` and below
    result = cast(TrialResult, train_one(task.map_index, spec, fold_data, segment, after))
    if result["error"]:
        result["metric"] = worst_score(metric, y_held, data.num_classes)
    result["fold"] = task.fold
    result["epochsTrained"] = task.trained + len(result["history"].get("loss", []))
    result["trial"] = task.name
    result["startedFrom"] = digest(segment.start)
    result["modelDigest"] = digest(result["model"])
    result["seconds"] += task.used  # the trial's training time over every rung so far
    if checkpoints is not None:
        record = {key: result.get(key) for key in RECORD_FIELDS}
        checkpoints.save(task.name, record, result["model"])
    return result
