"""Hyperparameter search helpers for pyspark.ml validators.

* :class:`ParamRandomBuilder` - random search: a list of ParamMaps sampled from uniform,
  log-uniform and choice distributions (optionally crossed with plain grid axes), for
  ``CrossValidator`` and ``TrainValidationSplit``, seeded and reproducible.
* :func:`tuning_report` - one row per param map of a fitted ``CrossValidatorModel`` or
  ``TrainValidationSplitModel``: the tuned values, mean and std of the metric, training time,
  failure, rank and the chosen best.
* :func:`plot_sensitivity` - the metric against one Param (log axis), one line per value of
  another Param, saved as a PNG.

Nothing here imports TensorFlow; matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.param import Param, TypeConverters

__all__ = ["ParamRandomBuilder", "plot_sensitivity", "tuning_report"]

#: Columns of :func:`tuning_report` besides one column per tuned Param.
REPORT_COLUMNS = ("metric", "mean", "std", "seconds", "failure", "rank", "best")


# -- random search --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars as Python scalars (pyspark's type converters accept only a few types)."""
    return value.item() if isinstance(value, np.generic) else value


def _convert(param: Param, value: Any, method: str) -> Any:
    """``value`` through the Param's type converter, with an error naming the Param."""
    value = _plain(value)
    converter = param.typeConverter
    try:
        return converter(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"ParamRandomBuilder.{method}: {value!r} is not a valid value for the "
            f"'{param.name}' param: {exc}"
        ) from None


def _is_int_param(param: Param) -> bool:
    return param.typeConverter is TypeConverters.toInt


class ParamRandomBuilder:
    """Builds ParamMaps for ``CrossValidator`` / ``TrainValidationSplit`` by random sampling.

    PySpark's :class:`~pyspark.ml.tuning.ParamGridBuilder` only builds full grids; random search
    covers a wide space with few trials, which matters most for continuous Params such as the
    learning rate.

    Random axes (drawn independently for each of the ``n`` points of :meth:`build`):

    * :meth:`addUniform` - uniform in ``[low, high)``;
    * :meth:`addLogUniform` - log-uniform in ``[low, high)`` (uniform in the exponent), the usual
      choice for learning rates and regularization;
    * :meth:`addChoice` - one of the given values, each equally likely.

    Params converted to ``int`` (``batchSize``, ``epochs``, ...) get ints: their ranges are
    inclusive, ``[low, high]``. Every value goes through the Param's type converter.

    Plain grid axes (:meth:`addGrid`) and fixed values (:meth:`baseOn`) combine with the sampled
    points as a cartesian product: ``build(n)`` returns ``n x (grid size)`` maps, and every grid
    point gets the same ``n`` sampled points, so results can be compared across the grid at equal
    values of the sampled Params.

    ``build(n, seed)`` is reproducible: the same builder and seed give the same maps. Each axis
    draws from its own random stream, so the first ``n`` points of ``build(n + 1, seed)`` are the
    points of ``build(n, seed)``.

    >>> from sparktf import ParamRandomBuilder, TFClassifier
    >>> clf = TFClassifier()
    >>> builder = (
    ...     ParamRandomBuilder()
    ...     .addLogUniform(clf.learningRate, 1e-4, 1e-1)
    ...     .addUniform(clf.epochs, 5, 20)
    ...     .addChoice(clf.optimizer, ["adam", "rmsprop"])
    ...     .addGrid(clf.hiddenLayers, [[64], [128, 64]])
    ... )
    >>> maps = builder.build(3, seed=42)
    >>> len(maps)
    6
    >>> all(1e-4 <= m[clf.learningRate] < 1e-1 for m in maps)
    True
    >>> sorted({type(m[clf.epochs]).__name__ for m in maps})
    ['int']
    >>> [m[clf.hiddenLayers] for m in maps[:4]]
    [[64], [64], [64], [128, 64]]
    >>> builder.build(3, seed=42) == maps
    True
    >>> builder.build(3, seed=43) == maps
    False
    """

    def __init__(self) -> None:
        # (param, kind, arguments) in the order the axes were added
        self._random: list[tuple[Param, str, tuple[Any, ...]]] = []
        self._grid: list[tuple[Param, list[Any]]] = []
        self._base: list[tuple[Param, Any]] = []

    # -- axes -----------------------------------------------------------------------------------

    def _check_new(self, param: Any, method: str) -> Param:
        if not isinstance(param, Param):
            raise TypeError(
                f"ParamRandomBuilder.{method} expects a Param (e.g. clf.learningRate). "
                f"Got {type(param).__name__} instead."
            )
        taken = [p for p, *_ in self._random] + [p for p, _ in self._grid]
        taken += [p for p, _ in self._base]
        if param in taken:
            raise ValueError(
                f"ParamRandomBuilder.{method}: the '{param.name}' param is already in this "
                "builder; each Param can be added once."
            )
        return param

    def _bounds(
        self, param: Param, low: Any, high: Any, integer: bool | None, method: str, log: bool
    ) -> tuple[float, float, bool]:
        for value in (low, high):
            value = _plain(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"ParamRandomBuilder.{method}: the bounds of the '{param.name}' param must "
                    f"be numbers. Got low={low!r}, high={high!r} instead."
                )
        low, high = _plain(low), _plain(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(
                f"ParamRandomBuilder.{method}: the bounds of the '{param.name}' param must be "
                f"finite. Got low={low!r}, high={high!r} instead."
            )
        if integer is None:
            integer = _is_int_param(param)
        if integer and not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(
                f"ParamRandomBuilder.{method}: the '{param.name}' param takes ints, so its "
                f"bounds must be whole numbers. Got low={low!r}, high={high!r} instead."
            )
        if low >= high:
            raise ValueError(
                f"ParamRandomBuilder.{method}: the range of the '{param.name}' param must have "
                f"low < high. Got low={low!r}, high={high!r} instead."
            )
        if log and low <= 0:
            raise ValueError(
                f"ParamRandomBuilder.{method}: a log-uniform range needs low > 0, but the "
                f"'{param.name}' param got low={low!r}, high={high!r}."
            )
        # Fail now, not at build time, when the Param cannot hold such values at all.
        probe = int(low) if integer else float(low)
        try:
            param.typeConverter(probe)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"ParamRandomBuilder.{method}: the '{param.name}' param does not take numbers "
                f"({exc}); use addChoice or addGrid for it."
            ) from None
        return float(low), float(high), bool(integer)

    def addUniform(
        self, param: Param, low: float, high: float, integer: bool | None = None
    ) -> ParamRandomBuilder:
        """Sample ``param`` uniformly in ``[low, high)`` (ints: ``[low, high]``).

        ``integer`` defaults to whether the Param converts values to int.
        """
        self._check_new(param, "addUniform")
        lo, hi, integer = self._bounds(param, low, high, integer, "addUniform", log=False)
        self._random.append((param, "uniform", (lo, hi, integer)))
        return self

    def addLogUniform(
        self, param: Param, low: float, high: float, integer: bool | None = None
    ) -> ParamRandomBuilder:
        """Sample ``param`` log-uniformly in ``[low, high)`` (ints: ``[low, high]``), ``low > 0``.

        Each decade of the range is equally likely: with ``1e-4, 1e-1`` about a third of the
        values fall in each of ``[1e-4, 1e-3)``, ``[1e-3, 1e-2)`` and ``[1e-2, 1e-1)``.
        """
        self._check_new(param, "addLogUniform")
        lo, hi, integer = self._bounds(param, low, high, integer, "addLogUniform", log=True)
        self._random.append((param, "loguniform", (lo, hi, integer)))
        return self

    def addChoice(self, param: Param, values: Sequence[Any]) -> ParamRandomBuilder:
        """Sample ``param`` from ``values``, each equally likely."""
        self._check_new(param, "addChoice")
        values = self._values(param, values, "addChoice")
        self._random.append((param, "choice", (values,)))
        return self

    def addGrid(self, param: Param, values: Sequence[Any]) -> ParamRandomBuilder:
        """Cross every sampled point with each of ``values`` (a plain grid axis)."""
        self._check_new(param, "addGrid")
        self._grid.append((param, self._values(param, values, "addGrid")))
        return self

    def baseOn(self, *args: Any) -> ParamRandomBuilder:
        """Fix Params in every map: a dict ``{param: value}`` or ``(param, value)`` pairs."""
        pairs: list[Any]
        if len(args) == 1 and isinstance(args[0], dict):
            pairs = list(args[0].items())
        else:
            pairs = list(args)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    "ParamRandomBuilder.baseOn expects a dict {param: value} or (param, value) "
                    f"pairs. Got {pair!r} instead."
                )
            param = self._check_new(pair[0], "baseOn")
            self._base.append((param, _convert(param, pair[1], "baseOn")))
        return self

    @staticmethod
    def _values(param: Param, values: Sequence[Any], method: str) -> list[Any]:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(
                f"ParamRandomBuilder.{method}: the values of the '{param.name}' param must be a "
                f"list. Got {type(values).__name__} instead."
            )
        if len(values) == 0:
            raise ValueError(
                f"ParamRandomBuilder.{method}: the '{param.name}' param needs at least one "
                "value. Got an empty list."
            )
        return [_convert(param, v, method) for v in values]

    # -- sampling -------------------------------------------------------------------------------

    @staticmethod
    def _draw(kind: str, args: tuple[Any, ...], n: int, rng: np.random.Generator) -> list[Any]:
        if kind == "choice":
            (values,) = args
            return [values[i] for i in rng.integers(0, len(values), size=n)]
        low, high, integer = args
        if kind == "uniform":
            if integer:
                return [int(v) for v in rng.integers(int(low), int(high), size=n, endpoint=True)]
            return [float(v) for v in rng.uniform(low, high, size=n)]
        if integer:  # log-uniform over [low, high + 1), rounded down: each int in [low, high]
            draws = np.exp(rng.uniform(math.log(low), math.log(high + 1), size=n))
            return [int(min(math.floor(v), high)) for v in draws]
        draws = np.exp(rng.uniform(math.log(low), math.log(high), size=n))
        # exp(log(x)) can round just outside [low, high); keep values inside the range
        return [float(min(max(v, low), math.nextafter(high, low))) for v in draws]

    def build(self, n: int, seed: int | None = None) -> list[dict[Param, Any]]:
        """``n`` sampled points, crossed with the grid axes: ``n x (grid size)`` ParamMaps.

        The same ``seed`` gives the same maps; ``seed=None`` draws fresh randomness.
        """
        if isinstance(n, bool) or not isinstance(_plain(n), int) or n < 1:
            raise ValueError(f"ParamRandomBuilder.build: n must be an int >= 1. Got {n!r} instead.")
        if not self._random:
            raise ValueError(
                "ParamRandomBuilder.build: no random axis was added (addUniform, addLogUniform, "
                "addChoice); use pyspark.ml.tuning.ParamGridBuilder for a plain grid."
            )
        n = int(n)
        streams = np.random.SeedSequence(seed).spawn(len(self._random))
        columns = [
            (param, self._draw(kind, args, n, np.random.default_rng(stream)))
            for (param, kind, args), stream in zip(self._random, streams, strict=True)
        ]
        samples = [[(param, values[i]) for param, values in columns] for i in range(n)]
        grid_axes = [[(param, v) for v in values] for param, values in self._grid]
        maps: list[dict[Param, Any]] = []
        for grid_point in itertools.product(*grid_axes):
            for sample in samples:
                # converted per map, so no two maps share a mutable value such as a list
                pairs = [*self._base, *grid_point, *sample]
                maps.append({param: _convert(param, v, "build") for param, v in pairs})
        return maps


# -- report -----------------------------------------------------------------------------------


def _key(value: Any) -> Any:
    """A hashable, comparable form of a Param value (lists as tuples, numpy as Python)."""
    value = _plain(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _key(v)) for k, v in value.items()))
    return value


def _tf_classifiers(stage: Any) -> list[Any]:
    """The TFClassifier stages inside ``stage`` (itself, or inside a possibly nested Pipeline)."""
    from pyspark.ml import Pipeline

    from sparktf.classification import TFClassifier

    if isinstance(stage, TFClassifier):
        return [stage]
    if isinstance(stage, Pipeline):
        return [found for s in stage.getStages() for found in _tf_classifiers(s)]
    return []


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


def _trial_matches(
    records: list[dict[str, Any]], keys: list[Any], runs: int
) -> list[list[dict[str, Any]]]:
    """The trial records of each param map: the most recent ``runs`` results for it.

    ``fitMultiple`` records one block per call, in param-map order, so the newest ``runs`` blocks
    that match ``keys`` in order are the folds of this search. Records that do not come in such
    blocks (``_fit`` called per map, e.g. for a Pipeline) are matched one by one, newest first.
    """
    record_keys = [_key(r.get("params") or {}) for r in records]
    matched: list[list[dict[str, Any]]] = [[] for _ in keys]
    m = len(keys)
    end, blocks = len(records), 0
    while blocks < runs and end >= m > 0:
        if record_keys[end - m : end] == keys:
            for i in range(m):
                matched[i].append(records[end - m + i])
            blocks += 1
            end -= m
        else:
            end -= 1
    if blocks == 0:
        # Fits one param map at a time (a Pipeline in a validator) record every Param set on
        # the stage: a record belongs to a map when it agrees on all of the map's Params.
        for i, key in enumerate(keys):
            wanted = set(key)
            same = [r for r, k in zip(records, record_keys, strict=True) if wanted <= set(k)]
            matched[i] = same[-runs * keys.count(key) :] if same else []
    return matched


def _find_classifiers(validator_model: Any, estimator: Any) -> list[Any]:
    candidates = []
    if estimator is not None:
        inner = estimator
        if hasattr(estimator, "getEstimator") and not _tf_classifiers(estimator):
            inner = estimator.getEstimator()
        candidates.append(inner)
    if validator_model.isDefined("estimator"):
        candidates.append(validator_model.getOrDefault("estimator"))
    for candidate in candidates:
        found = _tf_classifiers(candidate)
        if found:
            return found
    return []


def tuning_report(validator_model: Any, estimator: Any = None) -> pd.DataFrame:
    """A table of the param maps of a fitted ``CrossValidatorModel``/``TrainValidationSplitModel``.

    One row per param map, in the validator's order, with:

    * one column per Param set in the param maps, named by the Param name (values as given, so
      ``hiddenLayers`` holds lists);
    * ``metric``: the evaluator's metric name; ``mean``: ``avgMetrics`` (CrossValidator) or
      ``validationMetrics`` (TrainValidationSplit); ``std``: ``stdMetrics`` over the folds (NaN for
      TrainValidationSplit);
    * ``seconds``: training time of the map, the mean over folds; ``failure``: the error of a
      failed trial, empty when it trained (taken from the TFClassifier's trial records, or from
      collected sub-models; NaN / empty when neither is available, e.g. for a loaded model in a
      new process);
    * ``rank``: 1 is the best trained map by the evaluator's direction
      (``isLargerBetter``); failed trials and NaN metrics come after every other map;
    * ``best``: whether the validator chose this map for ``bestModel`` (the first best metric,
      as pyspark picks it).

    ``estimator`` is the TFClassifier (or the Pipeline holding it, or the validator) whose trial
    records to read, when ``validator_model`` does not carry its estimator.
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

    per_map_seconds: list[list[float]] = [[] for _ in metrics]
    per_map_errors: list[list[str]] = [[] for _ in metrics]
    classifiers = _find_classifiers(validator_model, estimator)
    if classifiers:
        from sparktf._distributed import trial_records

        for clf in classifiers:
            keys = [
                _key({p.name: v for p, v in pm.items() if p.parent == clf.uid}) for pm in param_maps
            ]
            matched = _trial_matches(trial_records(clf.uid), keys, runs)
            for i, found in enumerate(matched):
                per_map_seconds[i] += [float(r["seconds"]) for r in found]
                per_map_errors[i] += [str(r["error"]) for r in found if r.get("error")]
    for i, subs in enumerate(sub_models[: len(metrics)]):
        if per_map_seconds[i]:
            continue  # trial records found: they cover every fold
        for model in (m for sub in subs for m in _tf_models(sub)):
            if model.history.get("seconds") is not None:
                per_map_seconds[i].append(float(model.history["seconds"]))
            if model.trainingFailure:
                per_map_errors[i].append(str(model.trainingFailure))
    seconds = [float(np.mean(t)) if t else math.nan for t in per_map_seconds]
    failures = [_join_errors(e) for e in per_map_errors]

    columns = _param_columns(param_maps)
    data: dict[str, list[Any]] = {
        name: [pm.get(param, np.nan) for pm in param_maps] for name, param in columns
    }
    clash = [name for name, _ in columns if name in REPORT_COLUMNS]
    if clash:
        raise ValueError(f"tuning_report: Param name(s) {clash} clash with report columns.")
    report = pd.DataFrame(data, index=pd.RangeIndex(len(param_maps)))
    report["metric"] = _metric_name(evaluator)
    report["mean"] = np.asarray(metrics, dtype=float)
    report["std"] = np.asarray(stds, dtype=float) if len(stds) == len(metrics) else math.nan
    report["seconds"] = np.asarray(seconds, dtype=float)
    report["failure"] = failures

    values = report["mean"].to_numpy()
    direction = -1.0 if larger_better else 1.0
    order = sorted(
        range(len(values)),
        key=lambda i: (
            bool(failures[i]),
            bool(np.isnan(values[i])),
            direction * values[i] if not np.isnan(values[i]) else 0.0,
            i,
        ),
    )
    rank = np.empty(len(values), dtype=int)
    rank[order] = np.arange(1, len(values) + 1)
    report["rank"] = rank
    best = int(np.argmax(values)) if larger_better else int(np.argmin(values))
    report["best"] = [i == best for i in range(len(values))]
    report.attrs["metric"] = _metric_name(evaluator)
    report.attrs["isLargerBetter"] = larger_better
    report.attrs["params"] = [name for name, _ in columns]
    return report


def _join_errors(errors: Sequence[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return "; ".join(unique)


# -- plot ------------------------------------------------------------------------------------------


def _label(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_label(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def plot_sensitivity(
    report_or_validator_model: Any,
    x: str = "learningRate",
    line: str | None = "hiddenLayers",
    path: str = "sensitivity.png",
    log_x: bool = True,
    title: str | None = None,
) -> str:
    """Save a PNG of the metric against Param ``x``, one line per value of Param ``line``.

    ``report_or_validator_model`` is a :func:`tuning_report` DataFrame or a fitted validator
    model. Error bars show the std over folds when there is one; failed trials are marked with a
    red cross at the bottom of the plot, and the chosen best map with a star. ``line=None`` draws
    a single line. Returns ``path``.
    """
    report = (
        report_or_validator_model
        if isinstance(report_or_validator_model, pd.DataFrame)
        else tuning_report(report_or_validator_model)
    )
    missing = [c for c in ("mean", "failure") if c not in report.columns]
    if missing:
        raise ValueError(
            f"plot_sensitivity expects a tuning_report DataFrame; columns {missing} are missing."
        )
    params = [c for c in report.columns if c not in REPORT_COLUMNS]
    for arg, name in (("x", x), ("line", line)):
        if name is not None and name not in params:
            raise ValueError(
                f"plot_sensitivity: {arg}={name!r} is not a Param column of the report. "
                f"Param columns: {params}."
            )
    xs = pd.to_numeric(report[x], errors="coerce")
    if xs.isna().any():
        raise ValueError(
            f"plot_sensitivity: x={x!r} must hold numbers in every row. Got "
            f"{report[x][xs.isna()].iloc[0]!r}."
        )
    if log_x and (xs <= 0).any():
        raise ValueError(
            f"plot_sensitivity: a log x axis needs positive values of {x!r}. Got "
            f"{float(xs[xs <= 0].iloc[0])!r}; pass log_x=False."
        )

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = str(report["metric"].iloc[0]) if "metric" in report.columns else "metric"
    failed = report["failure"].fillna("").astype(str) != ""
    labels = report[line].map(_label) if line is not None else pd.Series("all", index=report.index)
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    has_std = "std" in report.columns and bool((report["std"].fillna(0) > 0).any())
    for label in dict.fromkeys(labels[~failed]):
        rows = report[(labels == label) & ~failed]
        order = np.argsort(xs[rows.index].to_numpy(), kind="stable")
        rx = xs[rows.index].to_numpy()[order]
        ry = rows["mean"].to_numpy(dtype=float)[order]
        err = rows["std"].to_numpy(dtype=float)[order] if has_std else None
        name = f"{line}={label}" if line is not None else metric
        ax.errorbar(rx, ry, yerr=err, marker="o", capsize=3, label=name)
    if "best" in report.columns and report["best"].any():
        best = report[report["best"].astype(bool) & ~failed]
        if len(best):
            ax.plot(
                xs[best.index],
                best["mean"],
                linestyle="none",
                marker="*",
                markersize=16,
                color="gold",
                markeredgecolor="black",
                label="chosen best",
                zorder=5,
            )
    if failed.any():
        ax.plot(
            xs[failed],
            np.full(int(failed.sum()), 0.03),
            linestyle="none",
            marker="X",
            markersize=10,
            color="red",
            label=f"failed trial ({int(failed.sum())})",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x + (" (log scale)" if log_x else ""))
    ax.set_ylabel(f"{metric} (mean ± std over folds)" if has_std else metric)
    ax.set_title(title or f"{metric} against {x}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, format="png")
    return path
