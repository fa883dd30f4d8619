"""Driver-side checks of Param values.

Messages follow one pattern so users can read them at a glance::

    The 'batchSize' param of TFClassifier must be an int in [1, inf). Got 0 instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyspark.ml.param import Params


def plain_value(value: Any) -> Any:
    """numpy scalars as Python scalars (pyspark's type converters accept only a few types)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return value
    return value.item() if isinstance(value, np.generic) else value


def _stage_name(stage: Params) -> str:
    return type(stage).__name__


def param_error(stage: Params, name: str, expected: str, got: Any) -> ValueError:
    """Build the ValueError raised for an invalid Param value."""
    return ValueError(
        f"The '{name}' param of {_stage_name(stage)} must be {expected}. Got {got!r} instead."
    )


def _interval(low: float | None, high: float | None, closed: str) -> str:
    left = "[" if closed in ("both", "left") and low is not None else "("
    right = "]" if closed in ("both", "right") and high is not None else ")"
    lo = "-inf" if low is None else f"{low:g}" if isinstance(low, float) else str(low)
    hi = "inf" if high is None else f"{high:g}" if isinstance(high, float) else str(high)
    return f"{left}{lo}, {hi}{right}"


def _in_range(value: float, low: float | None, high: float | None, closed: str) -> bool:
    if low is not None and (value < low or (value == low and closed not in ("both", "left"))):
        return False
    return high is None or not (value > high or (value == high and closed not in ("both", "right")))


def check_int_range(
    stage: Params, name: str, low: int | None = None, high: int | None = None
) -> int:
    """Check that Param ``name`` of ``stage`` is an int in ``[low, high]`` and return it."""
    value = stage.getOrDefault(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not _in_range(value, low, high, "both")
    ):
        raise param_error(stage, name, f"an int in {_interval(low, high, 'both')}", value)
    return value


def check_float_range(
    stage: Params,
    name: str,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
) -> float:
    """Check that Param ``name`` is a finite float in the interval and return it.

    ``closed`` is one of ``"both"``, ``"left"``, ``"right"``, ``"neither"``.
    """
    value = stage.getOrDefault(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not _in_range(value, low, high, closed)
    ):
        raise param_error(stage, name, f"a float in {_interval(low, high, closed)}", value)
    return float(value)


def check_choice(stage: Params, name: str, choices: Sequence[str]) -> str:
    """Check that Param ``name`` is one of ``choices`` (case-insensitive); return it lower-cased."""
    value = stage.getOrDefault(name)
    if not isinstance(value, str) or value.lower() not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise param_error(stage, name, f"one of {listed}", value)
    return value.lower()


def check_int_list(stage: Params, name: str, low: int = 1, allow_empty: bool = True) -> list[int]:
    """Check that Param ``name`` is a list of ints >= ``low`` and return it."""
    value = stage.getOrDefault(name)
    ok = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value
    )
    if not ok or (not allow_empty and not value):
        what = "a list" if allow_empty else "a non-empty list"
        raise param_error(stage, name, f"{what} of ints >= {low}", value)
    return list(value)
