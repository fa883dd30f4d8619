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
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyspark.ml.param import Param, TypeConverters

from sparktf.param import plain_value as _plain
from sparktf.report import REPORT_COLUMNS, plot_sensitivity, tuning_report

__all__ = ["REPORT_COLUMNS", "ParamRandomBuilder", "plot_sensitivity", "tuning_report"]

# -- random search --------------------------------------------------------------------------------


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
