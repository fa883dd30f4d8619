"""The MLflow runs of a halving search, logged by the driver as each rung's job ends.

One run for the search and, nested under it, one run per param map (not per rung): a map's
rungs continue one network from its own weights, so its per-epoch curves are one curve whose
steps run on from rung to rung, and its rungs are the steps of its rung metric. A run per rung
would cut that curve into pieces and leave the map's outcome (finished, failed, stopped by a
time limit, dropped at rung n) on no single run. Folds are one run's metrics too: ``fold1/loss``
and the mean over folds ``loss`` (see :func:`~sparktf.tracking._mlflow.history_metrics`).

The search's run is MLflow's active run when there is one (the user's, or autolog's around the
validator's ``fit``), else a new run in the experiment named by ``mlflowExperiment``. A search
resumed from its checkpoint folder finds its runs again by the checkpoint's digests and logs
only the rungs they lack, so no finished trial is logged twice.
"""

from __future__ import annotations

import hashlib
import json
import time
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

__all__ = ["SearchTracker"]

_KEY = "sparktf.searchKey"
_MAP = "sparktf.map"
_RUNGS = "sparktf.rungsLogged"
_OUTCOME = "sparktf.outcome"
_STOPPED = "stopped by time limit before rung"


class SearchTracker:
    """The driver's MLflow record of one halving search (see the module's notes). Every method
    is guarded: a tracking failure warns once and the search goes on."""

    def __init__(self, experiment: str, stage: str, maps: list[dict], labels: list[str]) -> None:
        mlflow = import_mlflow()
        from mlflow.tracking import MlflowClient

        self.guard = TrackingGuard()
        self.mlflow = mlflow
        self.client = MlflowClient()
        self.experiment = experiment
        self.stage = stage
        self.maps = maps
        self.labels = labels
        self.run_id: str | None = None
        self.own_run = False
        self.experiment_id: str | None = None
        self.map_runs: dict[int, str] = {}
        self.logged: dict[int, set[int]] = {}
        self.ended: set[int] = set()
        self.opened = False

    # -- the search's run ----------------------------------------------------------------------

    @guarded
    def start(self, settings: dict[str, Any], digests: dict[str, str] | None) -> None:
        """Open (or, for a resumed search, find) the search's run and its maps' runs."""
        from mlflow.entities import RunStatus

        key = None
        if digests is not None:
            key = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:24]
        active = active_run_id()
        if active is not None:
            self.run_id = active
            self.experiment_id = self.client.get_run(active).info.experiment_id
        else:
            self.experiment_id = experiment_id(self.client, self.experiment)
            found = []
            if key is not None:
                found = self.client.search_runs(
                    [self.experiment_id], f"tags.`{_KEY}` = '{key}'", max_results=1
                )
            if found:
                self.run_id = found[0].info.run_id
                self.client.update_run(self.run_id, RunStatus.to_string(RunStatus.RUNNING))
            else:
                run = self.client.create_run(
                    self.experiment_id, tags={"sparktf.kind": "search"}, run_name=self.stage
                )
                self.run_id = run.info.run_id
            self.own_run = True
        assert self.run_id is not None
        if key is not None:
            self.client.set_tag(self.run_id, _KEY, key)
            self._find_map_runs()
        self.client.set_tag(self.run_id, "sparktf.stage", self.stage)
        params = param_values(settings.items(), "search.")
        done = self.client.get_run(self.run_id).data.params
        self._batch(self.run_id, params={k: v for k, v in params.items() if k not in done})
        self.opened = True

    def _find_map_runs(self) -> None:
        children = self.client.search_runs(
            [self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.run_id}'"
        )
        for run in children:
            if _MAP in run.data.tags:
                m = int(run.data.tags[_MAP])
                self.map_runs[m] = run.info.run_id
                rungs = run.data.tags.get(_RUNGS, "")
                self.logged[m] = {int(r) for r in rungs.split(",") if r}
                # a map that failed or was dropped keeps its outcome; one the search's time
                # limit stopped before a rung goes on in the resumed search
                outcome = run.data.tags.get(_OUTCOME, "")
                if run.info.status != "RUNNING" and not outcome.startswith(_STOPPED):
                    self.ended.add(m)

    def _batch(self, run_id, metrics=(), params=None, tags=None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, t, s) for k, v, t, s in metrics],
            params=[Param(k, v) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def _map_run(self, m: int) -> str:
        """Map ``m``'s run, created at its first rung with the map's Params."""
        if m not in self.map_runs:
            assert self.run_id is not None and self.experiment_id is not None
            run = self.client.create_run(
                self.experiment_id,
                run_name=self.labels[m],
                tags={"mlflow.parentRunId": self.run_id, _MAP: str(m), "sparktf.kind": "trial"},
            )
            self.map_runs[m] = run.info.run_id
            self.logged[m] = set()
            self._batch(
                run.info.run_id, params=param_values((p.name, v) for p, v in self.maps[m].items())
            )
        return self.map_runs[m]

    # -- as the search goes ----------------------------------------------------------------------

    @guarded
    def rung(self, r: int, trials: dict[int, list[dict[str, Any]]], metric_name: str) -> None:
        """Log rung ``r`` (from 0) of every map in ``trials`` (its folds' results): the
        per-epoch curves, the rung's metric and seconds; end the runs of failed and timed-out
        maps. A rung a resumed search read back and its run already has is not logged again."""
        from mlflow.entities import RunStatus

        if not self.opened:
            return
        stamp = int(time.time() * 1000)
        for m, folds in trials.items():
            run_id = self._map_run(m)
            if r + 1 in self.logged[m]:
                continue
            histories = [t.get("history") or {} for t in folds]
            trained = max(int(t.get("epochsTrained", 0)) for t in folds)
            ran = max((len(h.get("loss", [])) for h in histories), default=0)
            metrics = history_metrics(histories, trained - ran, stamp)
            values = [float(t["metric"]) for t in folds]
            mean = sum(values) / len(values)
            seconds = sum(float(t["seconds"]) for t in folds) / len(folds)
            metrics += [
                (f"rung_{metric_name}", mean, stamp, r + 1),
                ("rung_epochs", float(trained), stamp, r + 1),
                ("seconds", seconds, stamp, r + 1),
            ]
            self.logged[m].add(r + 1)
            tags = {_RUNGS: ",".join(str(x) for x in sorted(self.logged[m])), "sparktf.rung": r + 1}
            errors = [str(t["error"]) for t in folds if t.get("error")]
            status = None
            if errors:
                tags.update({_OUTCOME: "failed", "sparktf.error": "; ".join(errors)[:5000]})
                status = "FAILED"
            elif any(t.get("timedOut") for t in folds):
                tags[_OUTCOME] = "stopped by time limit"
                status = "KILLED"
            self._batch(run_id, metrics=metrics, tags=tags)
            if status is not None:
                self._end(m, RunStatus.from_string(status))

    def _end(self, m: int, status: int) -> None:
        from mlflow.entities import RunStatus

        if m in self.ended or m not in self.map_runs:
            return
        self.ended.add(m)
        self.client.set_terminated(self.map_runs[m], RunStatus.to_string(status))

    @guarded
    def dropped(self, maps: list[int], r: int) -> None:
        """Maps ``maps`` go no further than rung ``r`` (from 1): the best went on."""
        from mlflow.entities import RunStatus

        for m in maps:
            if m in self.map_runs and m not in self.ended:
                self.client.set_tag(self.map_runs[m], _OUTCOME, f"dropped at rung {r}")
                self._end(m, RunStatus.FINISHED)

    @guarded
    def stopped(self, maps: list[int], r: int) -> None:
        """The search's time limit ended the search before rung ``r`` (from 1) of ``maps``."""
        from mlflow.entities import RunStatus

        for m in maps:
            if m in self.map_runs and m not in self.ended:
                self.client.set_tag(self.map_runs[m], _OUTCOME, f"{_STOPPED} {r}")
                self._end(m, RunStatus.KILLED)

    @guarded
    def search_ended(self) -> None:
        """The maps whose runs are still open went through the last rung: finished."""
        from mlflow.entities import RunStatus

        for m in list(self.map_runs):
            if m not in self.ended:
                self.client.set_tag(self.map_runs[m], _OUTCOME, "finished")
                self._end(m, RunStatus.FINISHED)

    # -- the end ---------------------------------------------------------------------------------

    @guarded
    def finish(self, model: Any, dataset: Any, best_map: dict) -> None:
        """The search's results on its run: best map and metric, summary, report, plot and the
        best model (:mod:`sparktf.tracking._results`); then the run ends, if sparktf began it."""
        from sparktf.tracking._results import log_search_results

        if not self.opened:
            return
        assert self.run_id is not None
        log_search_results(self, model, dataset, best_map)
        if self.own_run:
            self.client.set_terminated(self.run_id, "FINISHED")

    @guarded
    def failed(self, exc: BaseException) -> None:
        """The search raised: its run and the open map runs end FAILED, with the message."""
        if not self.opened:
            return
        assert self.run_id is not None
        for m in list(self.map_runs):
            if m not in self.ended:
                self.ended.add(m)
                self.client.set_terminated(self.map_runs[m], "FAILED")
        self.client.set_tag(self.run_id, "sparktf.error", str(exc)[:5000])
        if self.own_run:
            self.client.set_terminated(self.run_id, "FAILED")
