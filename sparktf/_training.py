"""What runs inside one Spark task: build a Keras model from a param map, train it, serialize it.

The driver sends a plain ``spec`` dict (the resolved Params of one param map) and the training
data through a broadcast; a task returns a plain result dict. Nothing here touches the driver's
Spark objects, and TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from typing import Any

import numpy as np

__all__ = ["build_model", "train_one", "worker_identity"]


def worker_identity() -> dict[str, Any]:
    """Where this code runs: host, Python process, and the JVM that launched it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "jvmPid": _jvm_ancestor_pid()}


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


def _optimizer(keras, name: str, learning_rate: float):
    factories = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "nadam": keras.optimizers.Nadam,
    }
    return factories[name](learning_rate=learning_rate)


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def build_model(spec: dict[str, Any], num_features: int, num_classes: int, x_train=None):
    """Build the (uncompiled) Keras model described by ``spec``.

    Returns ``(model, outputs_logits)``: the model maps a batch of flat feature vectors to
    ``num_classes`` scores, and ``outputs_logits`` tells whether those scores are logits (the
    built-in family) or probabilities (a user architecture ending in softmax).
    """
    import keras

    inputs = keras.Input(shape=(num_features,), name="features")
    x = inputs
    if spec["standardization"]:
        norm = keras.layers.Normalization(axis=-1, name="standardize")
        if x_train is not None:
            norm.adapt(x_train)
        x = norm(x)
    input_shape = list(spec["inputShape"])
    if spec["convLayers"] and len(input_shape) == 2:
        input_shape = [*input_shape, 1]
    if input_shape:
        x = keras.layers.Reshape(tuple(input_shape), name="reshape")(x)

    if spec.get("kerasModel"):
        user = keras.models.model_from_json(spec["kerasModel"])
        outputs = user(x)
        logits = not _ends_in_softmax(user)
    else:
        activation = spec["activation"]
        for i, filters in enumerate(spec["convLayers"]):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation=activation, name=f"conv{i}"
            )(x)
            if x.shape[1] >= 2 and x.shape[2] >= 2:
                x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        if len(x.shape) > 2:
            x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(spec["hiddenLayers"]):
            x = keras.layers.Dense(units, activation=activation, name=f"dense{i}")(x)
            if spec["dropout"] > 0:
                x = keras.layers.Dropout(spec["dropout"], name=f"dropout{i}")(x)
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
        logits = True
    model = keras.Model(inputs, outputs, name="sparktf_classifier")
    if model.output_shape[-1] != num_classes:
        raise ValueError(
            f"The Keras model given in 'kerasModel' must output {num_classes} scores (one per "
            f"class). Got an output of shape {model.output_shape} instead."
        )
    return model, logits


def _split(spec, x, y, val_mask, rng):
    if val_mask is not None:
        return x[~val_mask], y[~val_mask], (x[val_mask], y[val_mask])
    fraction = spec["validationSplit"]
    if fraction <= 0:
        return x, y, None
    order = rng.permutation(len(y))
    n_val = max(1, round(len(y) * fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], (x[val], y[val])


def _NonFiniteGuard(keras):
    """A callback that stops training at the first batch whose loss is nan or inf."""

    class NonFiniteGuard(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.failure: str | None = None
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.failure = (
                    f"training loss became {float(loss)} at epoch {self.epoch + 1}, "
                    f"batch {batch + 1}"
                )
                self.model.stop_training = True

    return NonFiniteGuard()


def train_one(index: int, spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Train one model. Never raises for a failed trial: the failure is in the result."""
    start = time.time()
    result: dict[str, Any] = {
        "index": index,
        "model": None,
        "error": None,
        "history": {},
        "worker": worker_identity(),
    }
    try:
        from sparktf._loading import keras_to_bytes
        from sparktf._tf import configure_tensorflow, configured_threads

        configure_tensorflow()
        result["worker"]["threads"] = configured_threads()
        import keras

        seed = int(spec["seed"]) % (2**32)
        keras.utils.set_random_seed(seed)
        x, y = data["x"], data["y"]
        x_train, y_train, validation = _split(
            spec, x, y, data.get("valMask"), np.random.default_rng(seed)
        )
        model, logits = build_model(spec, x.shape[1], data["numClasses"], x_train)
        model.compile(
            optimizer=_optimizer(keras, spec["optimizer"], spec["learningRate"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
            metrics=["accuracy"],
        )
        guard = _NonFiniteGuard(keras)
        callbacks: list[Any] = [guard]
        patience = spec["earlyStoppingPatience"]
        if patience > 0:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss" if validation is not None else "loss",
                    patience=patience,
                    restore_best_weights=True,
                )
            )
        fit = model.fit(
            x_train,
            y_train,
            batch_size=spec["batchSize"],
            epochs=spec["epochs"],
            validation_data=validation,
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
        history = {k: [float(v) for v in values] for k, values in fit.history.items()}
        result["history"] = history
        if guard.failure is None and not all(np.isfinite(w).all() for w in model.get_weights()):
            guard.failure = "weights became non-finite (nan or inf) during training"
        if guard.failure is not None:
            result["error"] = guard.failure
        else:
            result["model"] = keras_to_bytes(model)
            result["outputsLogits"] = logits
    except Exception as exc:  # a failed trial is data, not a crash
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
    end = time.time()
    result["seconds"] = end - start
    result["worker"]["started"] = start
    result["worker"]["finished"] = end
    return result
