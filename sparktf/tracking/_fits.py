"""The MLflow runs of ``TFClassifier.fit`` and ``fitMultiple``: one run per trained map.

Each run holds the map's Params, its per-epoch ``loss``/``accuracy`` (and ``val_`` ones with
validation rows) as metric histories, its seconds and its outcome (``finished``, or ``failed``
with the message), and is logged when the map's Spark job ends. Under an active MLflow run the
runs nest under it. pyspark's ``CrossValidator`` calls ``fitMultiple`` once per fold, in fold
order: the n-th call on a classifier (and its copies) is tagged ``sparktf.fitMultipleCall=n``,
which under a CrossValidator is fold n; ``sparktf.job`` names the job as progress lines do.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sparktf.tracking._mlflow import (
    TrackingGuard,
    active_run_id,
    experiment_id,
    guarded,
    history_metrics,
    import_mlflow,
    param_values,
)

__all__ = ["FitTracker"]

_calls: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_calls_lock = threading.Lock()


def _next_call(book: Any) -> int:
    """The number of this ``fitMultiple`` call on the classifier that owns ``book`` (from 1)."""
    with _calls_lock:
        _calls[book] = _calls.get(book, 0) + 1
        return _calls[book]


class FitTracker:
    """Logs the trials of one ``fit`` or ``fitMultiple`` call (see the module's notes)."""

    def __init__(self, experiment: str) -> None:
        import_mlflow()
        from mlflow.tracking import MlflowClient

        self.guard = TrackingGuard()
        self.client = MlflowClient()
        self.experiment = experiment

    @guarded
    def log(
        self,
        est: Any,
        param_maps: list[dict],
        results: list[dict[str, Any]],
        labels: list[str],
        job: str,
        multiple: bool,
        parent: str | None = None,
    ) -> list[str]:
        """One finished run per result, nested under run ``parent`` (default: the active run of
        this thread, if any); returns their run ids."""
        from mlflow.entities import Metric, Param, RunStatus, RunTag

        parent = parent or active_run_id()
        if parent is not None:
            exp = self.client.get_run(parent).info.experiment_id
        else:
            exp = experiment_id(self.client, self.experiment)
        tags = {"sparktf.kind": "trial", "sparktf.job": job}
        if multiple:
            tags["sparktf.fitMultipleCall"] = str(_next_call(est._trial_book))
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        ids = []
        for pm, result, label in zip(param_maps, results, labels, strict=True):
            copy = est.copy(pm)
            values = {p.name: v for p, v in copy.extractParamMap().items() if copy.isSet(p)}
            values.pop("mlflowExperiment", None)
            error = result.get("error")
            run = self.client.create_run(
                exp, run_name=label or "TFClassifier fit", tags={**tags, "sparktf.index": "0"}
            )
            history = result.get("history") or {}
            metrics = history_metrics([history], 0)
            outcome = {"sparktf.outcome": "failed" if error else "finished"}
            if error:
                outcome["sparktf.error"] = str(error)[:5000]
            if "index" in result:
                outcome["sparktf.index"] = str(result["index"])
            self.client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, t, s) for k, v, t, s in metrics]
                + [Metric("seconds", float(result["seconds"]), metrics[0][2] if metrics else 0, 0)],
                params=[Param(k, v) for k, v in param_values(values.items()).items()],
                tags=[RunTag(k, v) for k, v in outcome.items()],
            )
            status = RunStatus.FAILED if error else RunStatus.FINISHED
            self.client.set_terminated(run.info.run_id, RunStatus.to_string(status))
            ids.append(run.info.run_id)
        return ids
