"""sparktf: TensorFlow in Spark ML Pipelines.

* :class:`TFClassifier` / :class:`TFClassificationModel`: a Keras classifier as a pyspark.ml
  Estimator, trained inside Spark tasks; ``CrossValidator`` grids train as parallel tasks.
* :class:`TFGraphTransformer`: applies a trained TensorFlow model to DataFrame columns.
* :class:`HalvingCrossValidator` / :class:`HalvingTrainValidationSplit`: successive-halving
  searches whose rungs train every surviving map on every fold as one Spark job.
* :func:`tune_classifier`: a whole tuning run (search, report, plot, best model) in one call,
  as ``sparktf tune`` does it.

Importing sparktf does not import TensorFlow; executors import it when they need it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "TFClassifier": "sparktf.classification",
    "TFClassificationModel": "sparktf.classification",
    "DriverMemoryError": "sparktf.errors",
    "NotEnoughSlotsError": "sparktf.errors",
    "InvalidImageError": "sparktf.errors",
    "JavaNotFoundError": "sparktf.errors",
    "ModelSourceError": "sparktf.errors",
    "UnknownTensorError": "sparktf.errors",
    "UnsafeModelError": "sparktf.errors",
    "TrainingError": "sparktf.errors",
    "TrialFailedError": "sparktf.errors",
    "TFGraphTransformer": "sparktf.transformer",
    "trial_scope": "sparktf.classification",
    "ParamRandomBuilder": "sparktf.tuning",
    "HalvingCrossValidator": "sparktf.search",
    "HalvingTrainValidationSplit": "sparktf.search",
    "tuning_report": "sparktf.tuning",
    "plot_sensitivity": "sparktf.tuning",
    "get_spark": "sparktf.session",
    "tune_classifier": "sparktf.workflow",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sparktf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
