"""Reading a finished search: :func:`tuning_report` and :func:`plot_sensitivity`.

Both are also exported from :mod:`sparktf.tuning` and :mod:`sparktf`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.param import Param

__all__ = [
    "REPORT_COLUMNS",
    "TuningReport",
    "plot_sensitivity",
    "sensitivity_figure",
    "tuning_report",
]

#: Columns of :func:`tuning_report` besides one column per tuned Param.
REPORT_COLUMNS = ("metric", "mean", "std", "seconds", "failure", "rank", "best")
#: The columns a halving search's report adds (see :mod:`sparktf.search`).
SEARCH_COLUMNS = ("rung", "epochsTrained", "timedOut")


class TuningReport(pd.DataFrame):
    """The DataFrame :func:`tuning_report` returns: printed (``print``, ``repr``) with every
    column, each in full, wrapped to the terminal's width instead of cut to ``...``; otherwise an
    ordinary pandas DataFrame."""

    @property
    def _constructor(self):
        return TuningReport

    def _full(self, show) -> str:
        with pd.option_context(
            "display.max_columns", None, "display.max_colwidth", None, "display.max_rows", None
        ):
            return show()

    def __repr__(self) -> str:
        return self._full(super().__repr__)

    def to_string(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return self._full(lambda: super(TuningReport, self).to_string(*args, **kwargs))


def _tf_models(model: Any) -> list[Any]:
    from pyspark.ml import PipelineModel

    from sparktf.classification import TFClassificationModel

    if isinstance(model, TFClassificationModel):
        return [model]
    if isinstance(model, PipelineModel):
        return [found for s in model.stages for found in _tf_models(s)]
    return []


def _validator_parts(validator_model: Any) -> tuple[list[float], list[float], list[list[Any]], int]:
    """Metrics, stds, sub-models per map (one list per fold) and the number of runs per map."""
    from pyspark.ml.tuning import CrossValidatorModel, TrainValidationSplitModel

    if isinstance(validator_model, CrossValidatorModel):
        metrics = list(validator_model.avgMetrics)
        stds = list(validator_model.stdMetrics or [math.nan] * len(metrics))
        folds = validator_model.getOrDefault(validator_model.numFolds)
        per_map: list[list[Any]] = [[] for _ in metrics]
        for fold in validator_model.subModels or []:
            for i, sub in enumerate(fold or []):
                if sub is not None and i < len(per_map):
                    per_map[i].append(sub)
        return metrics, stds, per_map, int(folds)
    if isinstance(validator_model, TrainValidationSplitModel):
        metrics = list(validator_model.validationMetrics)
        subs = validator_model.subModels or []
        per_map = [[s] if s is not None else [] for s in subs] or [[] for _ in metrics]
        return metrics, [math.nan] * len(metrics), per_map, 1
    raise TypeError(
        "tuning_report expects a fitted CrossValidatorModel or TrainValidationSplitModel. Got "
        f"{type(validator_model).__name__} instead."
    )


def _metric_name(evaluator: Any) -> str:
    if evaluator is not None and hasattr(evaluator, "getMetricName"):
        try:
            return str(evaluator.getMetricName())
        except Exception:  # a custom evaluator whose metricName is unset
            pass
    return type(evaluator).__name__ if evaluator is not None else "metric"


def _param_columns(param_maps: Sequence[dict[Param, Any]]) -> list[tuple[str, Param]]:
    """(column name, Param) for every Param of the maps, named by Param name.

    Params of different stages that share a name are told apart as ``<stage uid>.<name>``.
    """
    params: list[Param] = []
    for param_map in param_maps:
        for param in param_map:
            if param not in params:
                params.append(param)
    counts: dict[str, int] = {}
    for param in params:
        counts[param.name] = counts.get(param.name, 0) + 1
    return [(p.name if counts[p.name] == 1 else f"{p.parent}.{p.name}", p) for p in params]


def _carried_trials(
    validator_model: Any, param_maps: list[dict[Param, Any]], estimator: Any, rounds: int
) -> list[list[Any]] | None:
    """Each map's trial records, as the best model carries them (None when it carries none).

    The refit a validator makes last keeps its search's trials (``history["search"]``, see
    :mod:`sparktf.training._book`), the newest ``rounds`` grid runs of its maps; with
    ``estimator``, only those of its TFClassifiers.
    """
    from sparktf.training._book import classifiers_in, trials_per_map

    wanted = None if estimator is None else {c.uid for c in classifiers_in(estimator)}
    best = getattr(validator_model, "bestModel", None)
    found: list[list[Any]] | None = None
    for model in _tf_models(best) if best is not None else []:
        search = model.history.get("search")
        if not search or (wanted is not None and search["estimator"] not in wanted):
            continue
        per_map = trials_per_map(search, param_maps, rounds)
        found = per_map if found is None else [a + b for a, b in zip(found, per_map, strict=True)]
    return found


def tuning_report(validator_model: Any, estimator: Any = None) -> TuningReport:
    """A table of the param maps of a fitted ``CrossValidatorModel``/``TrainValidationSplitModel``.

    A pandas DataFrame (:class:`TuningReport`, printed with every column), one row per param
    map, in the validator's order, with:

    * one column per Param set in the param maps, named by the Param name (values as given, so
      ``hiddenLayers`` holds lists);
    * ``metric``: the evaluator's metric name; ``mean``: ``avgMetrics`` (CrossValidator) or
      ``validationMetrics`` (TrainValidationSplit); ``std``: ``stdMetrics`` over the folds (NaN for
      TrainValidationSplit);
    * ``seconds``: training time of the map, the mean over folds; ``failure``: the error of a
      failed trial, empty when it trained. Both come from the trials the best model keeps (the
      validator's refit of a TFClassifier keeps its search's trials, also through ``save`` and
      ``load``; for a TFClassifier inside a Pipeline, when the validator was fitted inside
      :func:`~sparktf.classification.trial_scope`), or from collected sub-models; NaN / empty
      when neither has them (e.g. a Pipeline searched outside a trial scope). Maps that differ
      only in another stage's Params share the classifier's trials of a Pipeline search;
    * ``rank``: 1 is the best trained map by the evaluator's direction
      (``isLargerBetter``); failed trials and NaN metrics come after every other map;
    * ``best``: whether the validator chose this map for ``bestModel`` (the first best metric,
      as pyspark picks it).

    For a halving search (:mod:`sparktf.search`) the rows come from the trials the fitted model
    carries (also after ``load``): ``rung`` (1-based) and ``epochsTrained`` say where each map
    stopped and ``timedOut`` whether a time limit stopped it; ``mean`` and ``std`` are its
    metric at that rung (where ``avgMetrics`` gives the maps dropped earlier the worst value,
    so that its ``argmax`` names the best map); ``seconds`` is a map's training
    time over all its rungs (mean over folds); maps of deeper rungs rank first, and ``best``
    is the map the search chose (the best of the deepest rung).

    ``estimator`` is the TFClassifier (or the Pipeline holding it, or the validator) whose
    trials to read, when the best model holds several TFClassifiers (default: all).
    ``attrs`` holds ``metric``, ``isLargerBetter``, ``params`` (the Param columns) and
    ``folds`` (the folds of a CrossValidator; 1 for a TrainValidationSplit).
    """
    metrics, stds, sub_models, runs = _validator_parts(validator_model)
    param_maps = list(validator_model.getOrDefault("estimatorParamMaps"))
    if len(param_maps) != len(metrics):
        raise ValueError(
            f"tuning_report: the validator model has {len(param_maps)} param maps but "
            f"{len(metrics)} metrics."
        )
    evaluator = (
        validator_model.getOrDefault("evaluator")
        if validator_model.isDefined("evaluator")
        else None
    )
    larger_better = bool(evaluator.isLargerBetter()) if evaluator is not None else True
    trials = list(getattr(validator_model, "trials", None) or [])
    if len(trials) != len(metrics):
        trials = []
    if trials and all("metric" in t for t in trials):  # a halving map's metrics where it stopped
        metrics = [float(t["metric"]) for t in trials]
        if runs > 1:
            stds = [float(t["std"]) for t in trials]
    carried = None if trials else _carried_trials(validator_model, param_maps, estimator, runs)
    seconds, failures = _seconds_and_failures(param_maps, sub_models, trials, carried)
    columns = _param_columns(param_maps)
    report = _param_frame(param_maps, columns, trials)
    report["metric"] = _metric_name(evaluator)
    report["mean"] = np.asarray(metrics, dtype=float)
    report["std"] = np.asarray(stds, dtype=float) if len(stds) == len(metrics) else math.nan
    report["seconds"] = np.asarray(seconds, dtype=float)
    report["failure"] = failures
    if trials:
        report["rung"] = [int(t["rung"]) for t in trials]
        report["epochsTrained"] = [int(t["epochs"]) for t in trials]
        report["timedOut"] = [bool(t.get("timedOut")) for t in trials]
    values = report["mean"].to_numpy()
    report["rank"] = _ranks(values, failures, trials, larger_better)
    best = _best_map(validator_model, values, trials, larger_better)
    report["best"] = [i == best for i in range(len(values))]
    report.attrs["metric"] = _metric_name(evaluator)
    report.attrs["isLargerBetter"] = larger_better
    report.attrs["params"] = [name for name, _ in columns]
    report.attrs["folds"] = runs
    return report


def _seconds_and_failures(
    param_maps: list, sub_models: list, trials: list, carried: list[list[Any]] | None
) -> tuple[list[float], list[str]]:
    """Each map's training seconds (the mean over folds; NaN when unknown) and failure (empty
    when it trained): from a halving search's ``trials``, else from the trial records the best
    model ``carried``, else from the sub-models."""
    per_map_seconds: list[list[float]] = [[] for _ in param_maps]
    per_map_errors: list[list[str]] = [[] for _ in param_maps]
    for i, trial in enumerate(trials):  # a halving search carries its trials with it
        per_map_seconds[i].append(float(trial["seconds"]))
        if trial.get("error"):
            per_map_errors[i].append(str(trial["error"]))
    for i, records in enumerate(carried or []):
        per_map_seconds[i] += [record.seconds for record in records]
        per_map_errors[i] += [str(record.error) for record in records if record.error]
    for i, subs in enumerate(sub_models[: len(param_maps)]):
        if per_map_seconds[i]:
            continue  # trial records found: they cover every fold
        for model in (m for sub in subs for m in _tf_models(sub)):
            if model.history.get("seconds") is not None:
                per_map_seconds[i].append(float(model.history["seconds"]))
            if model.trainingFailure:
                per_map_errors[i].append(str(model.trainingFailure))
    seconds = [float(np.mean(t)) if t else math.nan for t in per_map_seconds]
    return seconds, [_join_errors(e) for e in per_map_errors]


def _param_frame(
    param_maps: list[dict[Param, Any]], columns: list[tuple[str, Param]], trials: list[Any]
) -> TuningReport:
    """The report's Param columns, one row per map; an error when a name is a report column's."""
    data: dict[str, list[Any]] = {
        name: [pm.get(param, np.nan) for pm in param_maps] for name, param in columns
    }
    taken = REPORT_COLUMNS + (SEARCH_COLUMNS if trials else ())
    clash = [name for name, _ in columns if name in taken]
    if clash:
        raise ValueError(f"tuning_report: Param name(s) {clash} clash with report columns.")
    return TuningReport(data, index=pd.RangeIndex(len(param_maps)))


def _ranks(
    values: np.ndarray, failures: list[str], trials: list[dict[str, Any]], larger_better: bool
) -> np.ndarray:
    """1-based ranks of the maps: failed trials last, then (for a halving search) deeper rungs
    first, NaN metrics after the others, better metrics first, ties in map order."""
    direction = -1.0 if larger_better else 1.0
    order = sorted(
        range(len(values)),
        key=lambda i: (
            bool(failures[i]),
            -int(trials[i]["rung"]) if trials else 0,
            bool(np.isnan(values[i])),
            direction * values[i] if not np.isnan(values[i]) else 0.0,
            i,
        ),
    )
    rank = np.empty(len(values), dtype=int)
    rank[order] = np.arange(1, len(values) + 1)
    return rank


def _best_map(
    validator_model: Any, values: np.ndarray, trials: list[dict[str, Any]], larger_better: bool
) -> int:
    """The map the validator chose: the first best metric (as pyspark picks it), or the search's."""
    best = int(np.argmax(values)) if larger_better else int(np.argmin(values))
    summary = getattr(validator_model, "searchSummary", None) or {}
    if trials and "best" in summary:  # the best of the deepest rung, which the search chose
        best = int(summary["best"])
    return best


def _join_errors(errors: Sequence[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return "; ".join(unique)


# -- plot ------------------------------------------------------------------------------------------


def plot_sensitivity(
    report_or_validator_model: Any,
    x: str = "learningRate",
    line: str | None = "hiddenLayers",
    path: str = "sensitivity.png",
    log_x: bool = True,
    title: str | None = None,
    data: str | None = None,
) -> str:
    """Save a PNG of the metric against Param ``x``, one line per value of Param ``line``.

    ``report_or_validator_model`` is a :func:`tuning_report` DataFrame or a fitted validator
    model. The x axis has a tick at every tried value. Error bars show the std over folds when
    there is one, the lines set slightly apart so that their bars do not hide each other
    (the points stay at their values on the axis); failed trials are marked with a red cross at
    the bottom of the plot, and the chosen best map with a star; for a halving search, maps
    that stopped before its last rung are drawn hollow. ``line=None`` draws a single
    line. The title names the metric and the validation (``validation accuracy, 3-fold
    cross-validation``), and the data when ``data`` names it; ``title`` replaces it. Returns
    ``path``.
    """
    fig = sensitivity_figure(report_or_validator_model, x, line, log_x, title, data)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def sensitivity_figure(
    report_or_validator_model: Any,
    x: str = "learningRate",
    line: str | None = "hiddenLayers",
    log_x: bool = True,
    title: str | None = None,
    data: str | None = None,
):
    """The matplotlib ``Figure`` :func:`plot_sensitivity` saves (same arguments, no path)."""
    from sparktf._sensitivity import figure

    report = (
        report_or_validator_model
        if isinstance(report_or_validator_model, pd.DataFrame)
        else tuning_report(report_or_validator_model)
    )
    params = [c for c in report.columns if c not in REPORT_COLUMNS + SEARCH_COLUMNS]
    return figure(report, params, x, line, log_x, title, data)
