"""The driver side of a successive-halving search: folds, rungs, promotion, checkpoints.

:func:`run_search` collects the training data once, gives every row a fold, shares both with
the executors once, and runs the rungs of :func:`~sparktf.search._schedule.rung_schedule` in
turn. Each rung is one Spark job whose tasks are every surviving param map times every fold
(:func:`sparktf.search._worker.run_trial`), so a search keeps as many slots busy as it has
trials, folds included. After a rung the maps are ranked by the mean of their folds' metrics
and the best ``1/factor`` continue from their own weights and optimizer state; promotion waits
for the whole rung (see docs/tuning.md for why). With a checkpoint folder, finished trials are
read back instead of trained again.

The estimator is passed in, so this module never imports a stage module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from typing import Any

import numpy as np

from sparktf.errors import TrainingError
from sparktf.search._checkpoints import CheckpointDir, trial_name
from sparktf.search._results import MapResult, SearchOutcome, SearchPlan, rank_key
from sparktf.search._schedule import Rung, rung_schedule
from sparktf.search._worker import SearchData, TrialResult, TrialTask, run_trial
from sparktf.training._plans import TrainingData

__all__ = ["MapResult", "SearchOutcome", "SearchPlan", "assign_folds", "rank_key", "run_search"]

logger = logging.getLogger("sparktf.tuning")


def assign_folds(rows: int, plan: SearchPlan) -> np.ndarray:
    """Each row's fold: k equal random folds, or for a split, 0 (held out) or -1 (trained on).

    >>> from sparktf.search._metrics import MetricSpec
    >>> plan = SearchPlan("s", 3, 0.75, 7, 3, 1, MetricSpec("accuracy", True))
    >>> np.bincount(assign_folds(10, plan)).tolist()
    [4, 3, 3]
    """
    rng = np.random.default_rng(plan.seed % 2**63)
    if plan.num_folds:
        folds = np.empty(rows, dtype=np.int64)
        folds[rng.permutation(rows)] = np.arange(rows) % plan.num_folds
        return folds
    held = max(1, round(rows * (1 - plan.train_ratio)))
    folds = np.full(rows, -1, dtype=np.int64)
    folds[rng.permutation(rows)[:held]] = 0
    return folds


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, default=repr).encode())
    return h.hexdigest()[:24]


def _data_bytes(values: np.ndarray) -> bytes:
    """The bytes a data array is known by: its buffer, or for an image column (an object array
    of encoded bytes, structs or paths) its values in order."""
    if values.dtype != object:
        return np.ascontiguousarray(values).tobytes()
    return json.dumps(
        [v.hex() if isinstance(v, bytes | bytearray) else v for v in values], default=repr
    ).encode()


def _digests(est, maps, evaluator, data: TrainingData, folds, rungs, plan) -> dict[str, str]:
    """What a checkpoint's trials belong to, part by part (see :mod:`._checkpoints`)."""
    # tracking changes no trial: a search resumed with it on or off reads the same checkpoint
    params = {p.name: v for p, v in est.extractParamMap().items() if p.name != "mlflowExperiment"}
    grid = [[(p.name, v) for p, v in pm.items()] for pm in maps]
    rated = {p.name: v for p, v in evaluator.extractParamMap().items()}
    arrays = [_data_bytes(a) for a in (data.x, data.y) if a is not None]
    if data.val_mask is not None:
        arrays.append(np.ascontiguousarray(data.val_mask).tobytes())
    for path in sorted(data.bases or ()):  # a base file changed under its path: new trials
        arrays += [path.encode(), data.bases[path]]
    return {
        "estimator": _hash(type(est).__name__, sorted(params.items())),
        "grid": _hash(grid),
        "evaluator": _hash(type(evaluator).__name__, sorted(rated.items())),
        "data": _hash(*arrays),
        "folds": _hash(folds.tobytes(), plan.num_folds, plan.train_ratio),
        "rungs": _hash([dataclasses.astuple(r) for r in rungs]),
    }


def _settings(plan: SearchPlan, rungs: list[Rung]) -> dict[str, Any]:
    """The search's settings as its MLflow run records them."""
    return {
        "stage": plan.stage,
        "numFolds": plan.num_folds,
        "trainRatio": plan.train_ratio,
        "seed": plan.seed,
        "factor": plan.factor,
        "minEpochs": plan.min_epochs,
        "trialTimeout": plan.trial_timeout or 0,
        "searchTimeout": plan.search_timeout or 0,
        "parallelism": plan.parallelism,
        "refit": plan.refit,
        "rungs": [(r.maps, r.epochs) for r in rungs],
    }


class _Search:
    """One run of a search (see :func:`run_search`)."""

    def __init__(self, spark, est, maps, evaluator, plan: SearchPlan, labels, tracker=None) -> None:
        self.spark = spark
        self.tracker = tracker  # a sparktf.tracking SearchTracker, or None
        self.est = est
        self.maps = maps
        self.evaluator = evaluator
        self.plan = plan
        self.labels = labels
        self.specs = [est.copy(pm)._training_spec() for pm in maps]
        if any(spec.num_workers > 1 for spec in self.specs):
            raise ValueError(
                f"{plan.stage} trains each trial in one task and continues it from rung to "
                "rung; it does not train with numWorkers > 1. Search with numWorkers=1 (the "
                "trials run side by side), then fit the chosen setting with numWorkers > 1."
            )
        self.checkpoints = CheckpointDir(plan.checkpoint_dir) if plan.checkpoint_dir else None
        self.finished: dict[str, dict[str, Any]] = {}
        self.latest: dict[tuple[int, int], dict[str, Any]] = {}
        self.rung_of: dict[int, int] = {}
        self.rung_metrics: dict[int, list[float]] = {}  # each map's mean metric per rung
        self.trained = 0
        self.task_seconds = 0.0
        self.jobs: list[dict[str, Any]] = []  # one per rung job: trials, wall and task seconds

    def model_bytes(self, result: dict[str, Any]) -> bytes | None:
        """A trial's model, read back from the checkpoint folder when it was not trained here."""
        if (
            result.get("model") is None
            and result.get("fromCheckpoint")
            and not result["error"]
            and not result.get("released")
        ):
            assert self.checkpoints is not None
            result["model"] = self.checkpoints.model(result["trial"])
        return result.get("model")

    def release(self, alive: list[int]) -> None:
        """Drop the model bytes no later step can use, as soon as a rung's ranking is known.

        The maps going on keep theirs (the next rung continues them). Of the maps that went no
        further, only the best can still be chosen (the maps going on may yet fail or time out
        back into its rung), and only its first fold's model is used, by ``refit=False``. With
        ``collectSubModels`` every model is kept.
        """
        if self.plan.sub_models:
            return
        done = [m for m in self.rung_of if m not in alive]
        keep = {(m, f) for m in alive for f in range(self.plan.folds)}
        standing = self.best_of({m: self.map_result(m) for m in done})
        if standing is not None and not self.plan.refit:
            keep.add((standing, 0))
        for key, result in self.latest.items():
            if key not in keep:
                result["model"], result["released"] = None, True

    def mean_metric(self, m: int) -> float:
        return float(np.mean([self.latest[(m, f)]["metric"] for f in range(self.plan.folds)]))

    def promote(self, alive: list[int], keep: int) -> list[int]:
        """The best ``keep`` of ``alive`` that trained every fold without failing or timing out."""
        able = [
            m
            for m in alive
            if not any(
                self.latest[(m, f)]["error"] or self.latest[(m, f)].get("timedOut")
                for f in range(self.plan.folds)
            )
        ]
        larger = self.plan.metric.larger_better
        chosen = sorted(able, key=lambda m: (rank_key(self.mean_metric(m), larger), m))[:keep]
        return sorted(chosen)

    def tasks(self, alive: list[int], r: int, rungs: list[Rung], deadline) -> list[TrialTask]:
        before = rungs[r - 1].epochs if r else 0
        tasks = []
        for m in alive:
            # an exhaustive search (one rung) may search the epochs: each map its own
            epochs = min(rungs[r].epochs, self.specs[m].total_epochs)
            for f in range(self.plan.folds):
                name = trial_name(m, f, epochs)
                if name in self.finished:
                    self.latest[(m, f)] = {**self.finished[name], "trial": name}
                    continue
                prev = self.latest[(m, f)] if r else {}
                used, trained = float(prev.get("seconds", 0.0)), int(prev.get("epochsTrained", 0))
                tasks.append(
                    TrialTask(
                        m, f, before, epochs, name, used, self.plan.trial_timeout, deadline, trained
                    )
                )
        return tasks

    def run_waves(self, n: int, train, labels: list[str], name: str) -> list[TrialResult]:
        """``train(0)`` .. ``train(n - 1)``, the trials of a rung, as the tasks of one Spark job;
        with ``parallelism`` p, as jobs of at most p tasks one after another, so that at most p
        trials train at once."""
        from sparktf.training._distributed import run_training_job

        size = self.plan.parallelism or n
        results: list[TrialResult] = []
        for first in range(0, n, size):
            part = list(range(first, min(n, first + size)))
            wave = run_training_job(
                self.spark, len(part), lambda i, part=part: train(part[i]), labels, name
            )
            results += wave
        return results

    def run_rung(self, shared, tasks: list[TrialTask], r: int, rungs: list[Rung]) -> None:
        from sparktf._spark import share

        starts = {}
        if r:
            for i, t in enumerate(tasks):
                prev = self.latest[(t.map_index, t.fold)]
                starts[i] = (self.model_bytes(prev), bool(prev.get("outputsLogits", True)))
        shared_starts = share(self.spark, starts)
        metric, checkpoints, specs = self.plan.metric, self.checkpoints, self.specs

        def train(index: int) -> TrialResult:
            task = tasks[index]
            start = shared_starts.value.get(index)
            result = run_trial(
                task, specs[task.map_index], shared.value, metric, start, checkpoints
            )
            result["index"] = index
            return result

        folds = self.plan.folds
        labels = [
            self.labels[t.map_index] + (f", fold {t.fold + 1}" if folds > 1 else "") for t in tasks
        ]
        name = f"{self.plan.stage} rung {r + 1} of {len(rungs)} ({rungs[r].epochs} epochs)"
        started = time.time()
        try:
            results = self.run_waves(len(tasks), train, labels, name)
        finally:
            shared_starts.release()
        seconds = 0.0
        for task, result in zip(tasks, results, strict=True):
            self.latest[(task.map_index, task.fold)] = result
            seconds += float(result["seconds"]) - task.used
        self.trained += len(tasks)
        self.task_seconds += seconds
        self.jobs.append(
            {
                "rung": r + 1,
                "trials": len(tasks),
                "wall": time.time() - started,
                "taskSeconds": seconds,
            }
        )

    def run(self, dataset) -> SearchOutcome:
        from sparktf._spark import share
        from sparktf.training._bases import read_bases, with_bases
        from sparktf.training._data import training_data

        plan = self.plan
        started = time.time()
        deadline = started + plan.search_timeout if plan.search_timeout else None
        # the folds are sliced from rows shared once: data above the limit is refused unstaged
        bases = read_bases(self.spark, self.specs)
        with training_data(self.est._data_spec(), dataset, unstaged=plan.stage) as data:
            data, self.specs = with_bases(data, self.specs, bases)
            folds = assign_folds(len(data.y), plan)
            # the budget spans both phases of a fine-tuned base (epochs + fineTuneEpochs)
            max_epochs = max(spec.total_epochs for spec in self.specs)
            rungs = rung_schedule(len(self.maps), max_epochs, plan.factor, plan.min_epochs)
            digests = None
            if self.checkpoints is not None:
                digests = _digests(self.est, self.maps, self.evaluator, data, folds, rungs, plan)
                for name, record in self.checkpoints.open(digests, plan.stage).items():
                    self.finished[name] = {**record, "fromCheckpoint": True, "model": None}
            if self.tracker is not None:
                self.tracker.start(_settings(plan, rungs), digests)
            shared = share(self.spark, SearchData(data=data, folds=folds))
            try:
                self._rungs(shared, rungs, deadline)
            finally:
                shared.release()
        return self._outcome(rungs, data)

    def _rungs(self, shared, rungs: list[Rung], deadline: float | None) -> None:
        alive = list(range(len(self.maps)))
        tracker = self.tracker
        for r, rung in enumerate(rungs):
            if r:
                before, alive = alive, self.promote(alive, rung.maps)
                if tracker is not None:
                    tracker.dropped([m for m in before if m not in alive], r)
                self.release(alive)
                if not alive:
                    break
            if deadline is not None and time.time() >= deadline:
                logger.info(
                    "%s: the search's time limit ended it before rung %d", self.plan.stage, r + 1
                )
                if tracker is not None:
                    tracker.stopped(alive, r + 1)
                break
            tasks = self.tasks(alive, r, rungs, deadline)
            if tasks:
                self.run_rung(shared, tasks, r, rungs)
            for m in alive:
                self.rung_of[m] = r
                self.rung_metrics.setdefault(m, []).append(self.mean_metric(m))
            if tracker is not None:  # as each rung's job ends
                folds = range(self.plan.folds)
                trials = {m: [self.latest[(m, f)] for f in folds] for m in alive}
                tracker.rung(r, trials, self.plan.metric.name)
        if tracker is not None:
            tracker.search_ended()
        self.release([])

    def map_result(self, m: int) -> MapResult:
        """Where map ``m`` stands: its last rung, metrics and trials (models not read)."""
        trials = [self.latest[(m, f)] for f in range(self.plan.folds)]
        metrics = [float(t["metric"]) for t in trials]
        errors = [t["error"] for t in trials if t["error"]]
        return MapResult(
            rung=self.rung_of[m] + 1,
            epochs=round(float(np.mean([t.get("epochsTrained", 0) for t in trials]))),
            metric=float(np.mean(metrics)),
            std=float(np.std(metrics)),
            seconds=float(np.mean([float(t["seconds"]) for t in trials])),
            error="; ".join(dict.fromkeys(errors)) or None,
            timed_out=any(bool(t.get("timedOut")) for t in trials),
            trials=trials,
            rung_metrics=self.rung_metrics.get(m, []),
        )

    def best_of(self, results: dict[int, MapResult]) -> int | None:
        """The map a search ending now would choose among ``results``: of the deepest rung
        reached (a timed-out trial did not finish its rung), the best metric (NaN last), the
        first of equals; None when every one failed."""
        larger = self.plan.metric.larger_better
        able = [i for i, r in results.items() if not r.error]
        if not able:
            return None
        return min(able, key=lambda i: (-results[i].depth, rank_key(results[i].metric, larger), i))

    def _outcome(self, rungs: list[Rung], data: TrainingData) -> SearchOutcome:
        results = [self.map_result(m) for m in range(len(self.maps))]
        best = self.best_of(dict(enumerate(results)))
        if best is None:
            details = "; ".join(f"[{self.labels[i]}] {r.error}" for i, r in enumerate(results[:5]))
            raise TrainingError(
                f"All {len(results)} param maps of {self.plan.stage} failed; none can be chosen. "
                f"Errors: {details}"
            )
        # a model read back from a checkpoint only where the fitted model uses it
        used = [t for r in results for t in r.trials] if self.plan.sub_models else []
        if not self.plan.refit and not self.plan.sub_models:
            used = results[best].trials[:1]
        for trial in used:
            self.model_bytes(trial)
        larger = self.plan.metric.larger_better
        return SearchOutcome(
            results, best, rungs, data, self.trained, self.task_seconds, self.jobs, larger
        )


def run_search(
    est, dataset, maps: list[dict], evaluator, plan: SearchPlan, labels: list[str], tracker=None
) -> SearchOutcome:
    """Run the search ``plan`` over the param maps ``maps`` of ``est`` on ``dataset``; with a
    ``tracker`` (:class:`sparktf.tracking.SearchTracker`), logged to MLflow as each rung ends."""
    search = _Search(dataset.sparkSession, est, maps, evaluator, plan, labels, tracker)
    return search.run(dataset)
