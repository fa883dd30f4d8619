"""Searches that scale: successive halving over folds and rungs, resumable, with deadlines.

* :class:`HalvingCrossValidator` / :class:`HalvingTrainValidationSplit`: pyspark.ml validators
  for TFClassifier whose rungs train every surviving map on every fold as one Spark job, and
  whose survivors continue from their weights and optimizer state (``factor=1``: the
  exhaustive search, all folds at once);
* :func:`rung_schedule`: the rungs a search over N maps will run.
"""

from sparktf.search._schedule import Rung, rung_schedule
from sparktf.search.halving import (
    HalvingCrossValidator,
    HalvingCrossValidatorModel,
    HalvingTrainValidationSplit,
    HalvingTrainValidationSplitModel,
)

__all__ = [
    "HalvingCrossValidator",
    "HalvingCrossValidatorModel",
    "HalvingTrainValidationSplit",
    "HalvingTrainValidationSplitModel",
    "Rung",
    "rung_schedule",
]
