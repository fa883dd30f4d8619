"""What runs inside one Spark task: build a Keras model from a param map, train it, serialize it.

The driver sends a plain ``spec`` dict (the resolved Params of one param map) and the training
data through a broadcast; a task returns a plain result dict. Nothing here touches the driver's
Spark objects, and TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from sparktf.training._networks import build_model
from sparktf.training._plans import Segment, TrainingData, TrainingResult, TrainingSpec

__all__ = ["build_model", "peak_rss_mib", "train_one", "worker_identity"]


def worker_identity() -> dict[str, Any]:
    """Where this code runs: host, Python process, and the JVM that launched it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "jvmPid": _jvm_ancestor_pid()}


def peak_rss_mib() -> float | None:
    """The largest resident memory of this process so far, in MiB; None where unknown.

    Linux's ``VmHWM`` belongs to the process's own memory image: unlike ``ru_maxrss`` it does
    not carry over the peak of the process that started this one (``ru_maxrss`` survives
    ``exec``, so a child of a large process would report its parent's peak). A reused Python
    worker reports its peak over every task it ran.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def _jvm_ancestor_pid() -> int | None:
    """PID of the nearest ``java`` ancestor process (the executor JVM), where /proc exists."""
    pid = os.getpid()
    for _ in range(16):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            with open(f"/proc/{ppid}/comm") as handle:
                name = handle.read().strip()
        except (OSError, ValueError, IndexError):
            return None
        if name == "java":
            return ppid
        if ppid <= 1:
            return None
        pid = ppid
    return None


def _optimizer(keras, spec: TrainingSpec, total_steps: int):
    """The optimizer named in ``spec``, with its learning rate schedule over ``total_steps``."""
    learning_rate: Any = spec.learning_rate
    if spec.learning_rate_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    optimizer_class = type(keras.optimizers.get(spec.optimizer))  # Keras resolves the name
    return optimizer_class(learning_rate=learning_rate)


def _split(spec, x, y, val_mask, rng):
    if val_mask is not None:
        return x[~val_mask], y[~val_mask], (x[val_mask], y[val_mask])
    fraction = spec.validation_split
    if fraction <= 0:
        return x, y, None
    order = rng.permutation(len(y))
    n_val = max(1, round(len(y) * fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], (x[val], y[val])


def _terminate_on_nan(keras):
    """Keras's ``TerminateOnNaN``, keeping the reason as the trial's failure message."""

    class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
        def __init__(self) -> None:
            super().__init__()
            self.failure: str | None = None
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_batch_end(self, batch, logs=None):
            super().on_batch_end(batch, logs)
            if self.model.stop_training and self.failure is None:
                loss = float((logs or {}).get("loss", float("nan")))
                # batches run STEPS_PER_EXECUTION at a time
                self.failure = (
                    f"training loss became {loss} at epoch {self.epoch + 1}, by batch {batch + 1}"
                )

    return TerminateOnNaN()


# Training steps run per call into TensorFlow (Keras's ``steps_per_execution``). One step of a
# small model costs less than Keras's Python work around it, so running several steps in one
# call makes small trials markedly faster; the steps, and so the trained model, are the same.
# Batch-level callbacks (the non-finite loss check) see every 32nd batch.
STEPS_PER_EXECUTION = 32

# Training arrays up to this size (as float32) are shuffled as whole rows in one buffer, the
# fastest pipeline; larger ones through shuffled row indices, with no second copy of the rows.
_SLICED_BYTES = 64 * 2**20


def _array_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """A ``tf.data`` pipeline over in-memory rows: a new random order every epoch, batches.

    Keras's own array adapter re-slices its arrays with Python work every epoch; a pipeline
    built once does the same in TensorFlow's runtime (measured in docs/benchmarks.md).
    """
    import tensorflow as tf

    rows = len(y)
    if x.nbytes <= _SLICED_BYTES:
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        dataset = dataset.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    features, labels = tf.constant(x), tf.constant(y)
    order = tf.data.Dataset.range(rows).shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    dataset = order.batch(batch_size).map(
        lambda index: (tf.gather(features, index), tf.gather(labels, index))
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _inputs(spec: TrainingSpec, data: TrainingData, seed: int, order_seed: int | None = None):
    """What ``model.fit`` reads, the number of training rows, and what adapts standardization.

    ``seed`` draws the held-out rows of ``validationSplit`` (the same for every part of a
    training done in parts); ``order_seed`` (default ``seed``) the order the rows are read in.

    Collected data arrives as arrays (uint8 pixels are made float32 here, losslessly) and is
    fed through :func:`_array_dataset`; staged data is streamed from its files
    (:func:`sparktf.training._streaming.staged_datasets`). An image column is decoded in its
    own pipeline (:mod:`sparktf.training._image_pipeline`, or when staged
    :mod:`sparktf.training._image_streaming`).
    """
    order = seed if order_seed is None else order_seed
    if data.image_kind and data.staged is not None:
        from sparktf.training._image_streaming import staged_image_datasets

        return staged_image_datasets(spec, data, order)
    if data.image_kind:
        from sparktf.training._image_pipeline import image_datasets

        return image_datasets(spec, data, seed, order)
    if data.staged is not None:
        from sparktf.training._streaming import staged_datasets

        train, validation, rows, adapt = staged_datasets(spec, data, seed)
        return {"x": train, "validation_data": validation, "shuffle": False}, rows, adapt
    x = np.asarray(data.x, dtype=np.float32)
    x_train, y_train, validation = _split(
        spec, x, data.y, data.val_mask, np.random.default_rng(seed)
    )
    inputs = {
        "x": _array_dataset(
            x_train, y_train, spec.batch_size, seed if order_seed is None else order_seed
        ),
        "shuffle": False,  # the dataset shuffles
        "validation_data": validation,
        "validation_batch_size": spec.batch_size if validation is not None else None,
    }
    return inputs, len(y_train), x_train


def _compile(keras, model, logits: bool, spec: TrainingSpec, epochs: int, train_rows: int):
    """Compile ``model`` with a new optimizer whose schedule spans ``epochs`` epochs."""
    steps = epochs * math.ceil(train_rows / spec.batch_size)
    model.compile(
        optimizer=_optimizer(keras, spec, steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )


def _fresh_model(keras, spec: TrainingSpec, data: TrainingData, train_rows: int, adapt):
    """The model ``spec`` describes, compiled with its optimizer over the (first phase's)
    budget."""
    base = (data.bases or {}).get(spec.base_model) if spec.base_model else None
    image = None
    if data.image_kind:
        from sparktf.training._image_pipeline import image_shape

        image = image_shape(spec)
    model, logits = build_model(
        spec, data.num_features, data.num_classes, adapt, image=image, base=base
    )
    _compile(keras, model, logits, spec, spec.epochs, train_rows)
    return model, logits


def _fit_phases(keras, model, logits, spec, segment, fit_inputs, callbacks, train_rows):
    """Fit the segment's epochs; the history of every epoch run.

    With a base and ``fineTuneEpochs``, epochs ``0..epochs`` train the head (base frozen) and
    the rest fine-tune: a segment that reaches epoch ``epochs`` (crossing it, or starting
    there from a model saved at its end) unfreezes the base's top ``trainableLayers`` there and
    recompiles with a new optimizer at ``fineTuneLearningRate``. A segment starting later
    continues a saved phase-two model, whose trainable flags and optimizer the bytes keep."""
    end = segment.epochs or spec.total_epochs
    first = segment.initial_epoch
    switch = spec.base_model and spec.fine_tune_epochs and first <= spec.epochs < end
    parts = (
        [(first, spec.epochs, False), (spec.epochs, end, True)] if switch else [(first, end, False)]
    )
    history: dict[str, list[float]] = {}
    for begin, stop, tune in parts:
        if tune:
            if any(getattr(c, "failure", None) or getattr(c, "reached", False) for c in callbacks):
                break  # a non-finite loss or the time limit ended the first phase
            from sparktf.training._transfer import phase_two

            phase_two(model, spec)
            tuned = dataclasses.replace(spec, learning_rate=spec.fine_tune_learning_rate)
            _compile(keras, model, logits, tuned, spec.fine_tune_epochs, train_rows)
        if stop <= begin:
            continue
        fit = model.fit(
            **fit_inputs, initial_epoch=begin, epochs=stop, callbacks=callbacks, verbose=0
        )
        for key, values in fit.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return history


def _time_limit(keras, seconds: float, start: float):
    """A callback that stops training at the end of the first epoch finishing past the limit."""

    class TimeLimit(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.reached = False

        def on_epoch_end(self, epoch, logs=None):
            if time.time() - start >= seconds:
                self.reached = True
                self.model.stop_training = True

    return TimeLimit()


def _callbacks(keras, spec: TrainingSpec, fit_inputs: dict, guard, limit) -> list[Any]:
    callbacks: list[Any] = [guard]
    patience = spec.early_stopping_patience
    if patience > 0:
        held_out = fit_inputs.get("validation_data") is not None
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss" if held_out else "loss",
                patience=patience,
                restore_best_weights=True,
            )
        )
    if limit is not None:
        callbacks.append(limit)
    return callbacks


def _finish(result: TrainingResult, model, logits: bool, failure: str | None, after) -> None:
    """A trained model's part of its result: the failure, or the model's bytes and ``after``'s."""
    from sparktf._loading import keras_to_bytes

    if failure is None and not all(np.isfinite(w).all() for w in model.get_weights()):
        failure = "weights became non-finite (nan or inf) during training"
    if failure is not None:
        result["error"] = failure
        return
    result["model"] = keras_to_bytes(model)
    result["outputsLogits"] = logits
    if len(model.input_shape) == 4:  # an image column's network: (batch, height, width, channels)
        result["image"] = {"size": list(model.input_shape[1:3]), "channels": model.input_shape[3]}
    if after is not None:
        result.update(after(model, logits))


def train_one(
    index: int,
    spec: TrainingSpec,
    data: TrainingData,
    segment: Segment | None = None,
    after: Callable[[Any, bool], dict[str, Any]] | None = None,
) -> TrainingResult:
    """Train one model. Never raises for a failed trial: the failure is in the result.

    With a ``segment``, only its epochs are trained, continuing from its ``start`` model when it
    has one; ``after(model, logits)`` runs on the trained model and adds its dict to the result
    (the search scores held-out rows with it, in the task).
    """
    start = time.time()
    segment = segment or Segment()
    result: TrainingResult = {
        "index": index,
        "model": None,
        "error": None,
        "history": {},
        "seconds": 0.0,
        "worker": worker_identity(),
    }
    _train(result, start, spec, data, segment, after)
    end = time.time()
    result["worker"]["peakRssMiB"] = peak_rss_mib()
    result["seconds"] = end - start
    result["worker"]["started"] = start
    result["worker"]["finished"] = end
    return result


def _train(
    result: TrainingResult,
    start: float,
    spec: TrainingSpec,
    data: TrainingData,
    segment: Segment,
    after: Callable[[Any, bool], dict[str, Any]] | None,
) -> None:
    """Train the model and fill in ``result``; a failure goes into ``result``, never raised."""
    try:
        from sparktf._loading import load_keras_bytes
        from sparktf._tf import configure_tensorflow, configured_threads

        configure_tensorflow()
        result["worker"]["threads"] = configured_threads()
        import keras

        seed = int(spec.seed) % (2**32)
        keras.utils.set_random_seed((seed + segment.initial_epoch) % (2**32))
        order = (seed + segment.initial_epoch) % (2**32)
        fit_inputs, train_rows, adapt = _inputs(spec, data, seed, order)
        if segment.start is not None:
            model, logits = load_keras_bytes(segment.start, compile=True), segment.start_logits
        else:
            model, logits = _fresh_model(keras, spec, data, train_rows, adapt)
        guard = _terminate_on_nan(keras)
        limit = None
        if segment.time_limit is not None:
            limit = _time_limit(keras, segment.time_limit, start)
        ready = time.time()
        callbacks = _callbacks(keras, spec, fit_inputs, guard, limit)
        result["history"] = _fit_phases(
            keras, model, logits, spec, segment, fit_inputs, callbacks, train_rows
        )
        epochs_run = len(result["history"].get("loss", []))
        result["worker"]["timing"] = {  # setup: TensorFlow, the input pipeline, the network
            "setup": ready - start,
            "train": time.time() - ready,
            "steps": epochs_run * math.ceil(train_rows / spec.batch_size),
        }
        result["timedOut"] = bool(limit is not None and limit.reached)
        _finish(result, model, logits, guard.failure, after)
    except Exception as exc:  # a failed trial is data, not a crash
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
