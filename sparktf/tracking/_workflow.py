"""The MLflow run of :func:`sparktf.workflow.tune_classifier` (``track=``, ``sparktf tune
--mlflow-experiment``): one run around the whole tuning, the search's trials nested under it
(a halving search logs its own results into it), and at the end the test accuracy, the
seconds and the files the tuning wrote (report, plot)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from sparktf.tracking._mlflow import experiment_id, import_mlflow

__all__ = ["TuningRun", "tuning_run"]


class TuningRun:
    """The open run of one tuning (nothing at all when tracking was not asked for)."""

    def __init__(self, mlflow: Any | None) -> None:
        self.mlflow = mlflow

    def results(self, accuracy: float | None, seconds: float, files: list[str | None]) -> None:
        if self.mlflow is None:
            return
        self.mlflow.log_metric("tuning_seconds", seconds)
        if accuracy is not None:
            self.mlflow.log_metric("test_accuracy", accuracy)
        for path in files:
            if path and os.path.isfile(path):
                self.mlflow.log_artifact(path, "tuning")


@contextlib.contextmanager
def tuning_run(experiment: str | None, description: str) -> Iterator[TuningRun]:
    """An MLflow run in ``experiment`` for the block (nested under an active run), or none."""
    if not experiment:
        yield TuningRun(None)
        return
    mlflow = import_mlflow()
    from mlflow.tracking import MlflowClient

    exp = experiment_id(MlflowClient(), experiment)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(experiment_id=exp, run_name="tune_classifier", nested=nested):
        mlflow.set_tag("sparktf.kind", "tuning")
        mlflow.set_tag("mlflow.note.content", description)
        yield TuningRun(mlflow)
