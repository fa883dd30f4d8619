"""The workload of benchmarks/bench_tuning.py: the data (digits with noise), the grid of
settings, the TFClassifier and param maps that train it, and the machine's load average."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

SMALL_TRIAL_UNITS = (64, 256)


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def digits_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits repeated to ``rows`` rows, each copy with fresh Gaussian pixel noise."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    reps = -(-rows // len(digits.target))
    x = np.tile(digits.data.astype(np.float32), (reps, 1))[:rows]
    y = np.tile(digits.target.astype(np.int32), reps)[:rows]
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, 1.0, x.shape).astype(np.float32)
    return x, y


def grid_settings(args) -> list[dict[str, Any]]:
    """The settings of the grid.

    By default settings of equal cost (same layers and batch size), so no task waits on a slower
    one; with ``--small-trials`` the grid of many small models: hidden units x learning rate.
    """
    if args.small_trials:
        return [
            {"learningRate": lr, "optimizer": "adam", "hiddenLayers": [units]}
            for units in SMALL_TRIAL_UNITS
            for lr in args.learning_rates
        ]
    return [
        {"learningRate": lr, "optimizer": opt}
        for opt in ("adam", "rmsprop")
        for lr in args.learning_rates
    ]


def hidden_layers(setting: dict[str, Any], args) -> list[int]:
    return list(setting.get("hiddenLayers", args.hidden))


def setting_label(setting: dict[str, Any]) -> str:
    label = f"optimizer={setting['optimizer']}, learningRate={setting['learningRate']:g}"
    if "hiddenLayers" in setting:
        label = f"hiddenLayers={setting['hiddenLayers']}, " + label
    return label


def classifier(args, epochs: int):
    from sparktf import TFClassifier

    return TFClassifier(
        hiddenLayers=list(args.hidden),
        dropout=args.dropout,
        batchSize=args.batch_size,
        epochs=epochs,
        seed=args.seed,
    )


def param_maps(clf, args) -> list[dict]:
    return [
        {
            clf.optimizer: s["optimizer"],
            clf.learningRate: s["learningRate"],
            clf.hiddenLayers: hidden_layers(s, args),
        }
        for s in grid_settings(args)
    ]
