"""Tracking sparktf's trainings and searches in MLflow, as they run (optional: needs mlflow).

MLflow is imported only here, and only when tracking is asked for (``mlflowExperiment`` on
:class:`~sparktf.TFClassifier` and the halving validators, ``tune_classifier(track=...)``,
``sparktf tune --mlflow-experiment``). The driver logs: the tasks send each trial's per-epoch
history back with its result, so the executors need no MLflow. A tracking failure (a store
that cannot be reached) is one warning, never a failed training. See docs/tuning.md,
"Tracking with MLflow".
"""

from sparktf.tracking._fits import FitTracker
from sparktf.tracking._search import SearchTracker

__all__ = ["FitTracker", "SearchTracker"]
