"""The baselines of benchmarks/bench_tuning.py, run on the driver without Spark: (a) the grid as
a plain sequential loop of Keras ``fit`` calls, and (a') the grid through sparktf's own training
function (``sparktf.training._training.train_one``) in the same loop."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _tuning import classifier, grid_settings, hidden_layers, load_average, param_maps

# -- (a) the plain Keras loop -----------------------------------------------------------------


def keras_model(x: np.ndarray, hidden: list[int], dropout: float, classes: int):
    """The MLP a user would write by hand; same layers as TFClassifier's built-in family."""
    import keras

    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    layers: list[Any] = [keras.Input(shape=(x.shape[1],)), norm]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(classes))
    return keras.Sequential(layers)


def keras_fit(x, y, setting: dict[str, Any], args, epochs: int) -> dict[str, Any]:
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    model = keras_model(x, hidden_layers(setting, args), args.dropout, 10)
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    model.compile(
        optimizer=optimizers[setting["optimizer"]](learning_rate=setting["learningRate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=args.batch_size, epochs=epochs, shuffle=True, verbose=0)
    return {
        "seconds": time.perf_counter() - start,
        "loss": float(history.history["loss"][-1]),
        "accuracy": float(history.history["accuracy"][-1]),
        "params": int(model.count_params()),
    }


def same_architecture(x, args) -> tuple[int, int]:
    """Parameter counts of the hand-written model and of sparktf's built-in one."""
    from sparktf._classifier_params import training_spec
    from sparktf.training._training import build_model

    spec = training_spec(hiddenLayers=list(args.hidden), dropout=args.dropout)
    ours, _ = build_model(spec, x.shape[1], 10, x[:256])
    return keras_model(x[:256], args.hidden, args.dropout, 10).count_params(), ours.count_params()


def warm_up_keras(x, y, args) -> dict[str, Any]:
    start = time.perf_counter()
    import tensorflow  # noqa: F401  (counted in the warm-up)

    keras_fit(x[:1024], y[:1024], grid_settings(args)[0], args, epochs=1)  # traces a first model
    return {"warmup": time.perf_counter() - start, "params": same_architecture(x, args)}


def run_keras_loop(x, y, args) -> dict[str, Any]:
    load_before = load_average()
    start = time.perf_counter()
    fits = [keras_fit(x, y, setting, args, args.epochs) for setting in grid_settings(args)]
    total = time.perf_counter() - start
    return {"seconds": total, "fits": fits, "load": (load_before, load_average())}


# -- (a'): sparktf's own training function in the same loop ----------------------------------


def run_train_one_loop(x, y, args) -> dict[str, Any]:
    """The grid through ``sparktf.training._training.train_one`` in a driver loop: the task's work
    without Spark, so (a')/(b) is what task parallelism alone gains."""
    from sparktf.training._training import train_one

    clf = classifier(args, args.epochs)
    from sparktf.training._plans import TrainingData

    data = TrainingData(num_features=x.shape[1], num_classes=10, x=x, y=y)
    load_before = load_average()
    start = time.perf_counter()
    fits = []
    for index, param_map in enumerate(param_maps(clf, args)):
        result = train_one(index, clf.copy(param_map)._training_spec(), data)
        if result["error"]:
            raise RuntimeError(f"setting {index} failed: {result['error']}")
        fits.append({"seconds": result["seconds"], "loss": result["history"]["loss"][-1]})
    total = time.perf_counter() - start
    return {"seconds": total, "fits": fits, "load": (load_before, load_average())}
