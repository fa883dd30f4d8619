"""What a successive-halving search works with and hands back: its plan (the validator's
checked Params), where each param map stopped (:class:`MapResult`), the whole outcome and how
maps are ranked (:func:`rank_key`). Plain data, shared by the driver and the validators."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sparktf.search._metrics import MetricSpec
from sparktf.search._schedule import Rung
from sparktf.training._plans import TrainingData

__all__ = ["MapResult", "SearchOutcome", "SearchPlan", "rank_key"]


def rank_key(metric: float, larger_better: bool) -> tuple[bool, float]:
    """Sorts metrics best first by the evaluator's direction, and NaN after every number (a
    NaN compares neither better nor worse, which would leave the order undefined).

    >>> sorted([0.5, float("nan"), 0.9], key=lambda v: rank_key(v, True))
    [0.9, 0.5, nan]
    """
    if math.isnan(metric):
        return True, 0.0
    return False, -metric if larger_better else metric


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """What the validator's Params ask of the search, checked by the stage."""

    stage: str
    num_folds: int  # 0: a train/validation split by train_ratio
    train_ratio: float
    seed: int
    factor: int
    min_epochs: int
    metric: MetricSpec
    trial_timeout: float | None = None
    search_timeout: float | None = None
    checkpoint_dir: str | None = None
    refit: bool = True  # bestModel is trained again: it needs no trial's model
    sub_models: bool = False  # collectSubModels: every map's model of every fold
    parallelism: int = 0  # trials of a rung training at once, at most (0: no limit)

    @property
    def folds(self) -> int:
        return self.num_folds or 1


@dataclasses.dataclass
class MapResult:
    """Where one param map ended: its last rung (1-based), metrics and trials per fold."""

    rung: int
    epochs: int
    metric: float
    std: float
    seconds: float
    error: str | None
    timed_out: bool
    trials: list[dict[str, Any]]  # one per fold: the train_one result of its last rung
    rung_metrics: list[float] = dataclasses.field(default_factory=list)  # mean of each rung

    def record(self) -> dict[str, Any]:
        """The JSON-able summary a fitted validator keeps (and saves) for the report: where the
        map stopped, its metric there (mean and std over folds) and its mean at every rung."""
        return {
            "rung": self.rung,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "error": self.error,
            "timedOut": self.timed_out,
            "metric": self.metric,
            "std": self.std,
            "rungMetrics": list(self.rung_metrics),
        }

    @property
    def depth(self) -> int:
        """How far the map went: its last rung, one less if a time limit cut that rung short."""
        return self.rung - self.timed_out


@dataclasses.dataclass
class SearchOutcome:
    maps: list[MapResult]
    best: int
    rungs: list[Rung]
    data: TrainingData
    trained: int  # trials trained by this run (not read from a checkpoint)
    task_seconds: float  # their training seconds, in all
    jobs: list[dict[str, Any]]  # each rung job of this run: rung, trials, wall, taskSeconds
    larger_better: bool = True

    def validator_metrics(self) -> tuple[list[float], list[float]]:
        """``avgMetrics`` and ``stdMetrics`` as pyspark's validators mean them: ``argmax`` (or
        ``argmin`` when smaller is better) names the best map. The maps the best was chosen
        among (same depth, trained, a number) keep their metric and std; every other map (one
        dropped at an earlier rung, failed, or NaN) gets the worst value (-inf, or +inf when
        smaller is better) and a NaN std. Each map's own metrics stay in its ``record()``."""
        worst = -math.inf if self.larger_better else math.inf
        depth = self.maps[self.best].depth
        metrics, stds = [], []
        for i, m in enumerate(self.maps):
            kept = i == self.best or (m.depth == depth and not m.error and not math.isnan(m.metric))
            metrics.append(m.metric if kept else worst)
            stds.append(m.std if kept else math.nan)
        return metrics, stds
