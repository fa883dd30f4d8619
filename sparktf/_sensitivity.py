"""The sensitivity plot of a tuning report (:func:`sparktf.report.plot_sensitivity`).

:func:`figure` draws the metric against one searched Param, one line per value of another,
with the folds' std as error bars (the lines set slightly apart), failed trials, the chosen
best and, for a halving search, the maps that stopped early. matplotlib is imported only
inside functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sparktf.param import plain_value as _plain

__all__ = ["figure", "value_label"]

# Horizontal distance, in points, between the lines of a plot at the same x value.
_DODGE_POINTS = 5.0


def value_label(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(value_label(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _title(report: pd.DataFrame, metric: str, data: str | None) -> str:
    """``validation accuracy, 3-fold cross-validation on <data>``"""
    folds = report.attrs.get("folds")
    how = (
        f", {folds}-fold cross-validation"
        if isinstance(folds, int) and folds > 1
        else ", train/validation split"
        if folds == 1
        else ""
    )
    return f"validation {metric}{how}" + (f" on {data}" if data else "")


def figure(
    report: pd.DataFrame,
    params: list[str],
    x: str,
    line: str | None,
    log_x: bool,
    title: str | None,
    data: str | None,
):
    """The figure of ``report`` (a tuning report whose Param columns are ``params``)."""
    xs = _checked_x(report, params, x, line, log_x)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = str(report["metric"].iloc[0]) if "metric" in report.columns else "metric"
    failed = report["failure"].fillna("").astype(str) != ""
    labels = (
        report[line].map(value_label) if line is not None else pd.Series("all", index=report.index)
    )
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    has_std = "std" in report.columns and bool((report["std"].fillna(0) > 0).any())
    names = list(dict.fromkeys(labels[~failed]))
    dodge = _draw_lines(fig, ax, report, xs, labels, failed, names, has_std, line, metric)
    _draw_marks(ax, report, xs, labels, failed, names, dodge)
    _style_axes(ax, xs, x, log_x)
    ax.set_ylabel(f"{metric} (mean ± std over folds)" if has_std else metric)
    ax.set_title(title or _title(report, metric, data), fontsize="medium", wrap=True)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _checked_x(
    report: pd.DataFrame, params: list[str], x: str, line: str | None, log_x: bool
) -> pd.Series:
    """The x values of every row, after checking the report and the axes asked for."""
    missing = [c for c in ("mean", "failure") if c not in report.columns]
    if missing:
        raise ValueError(
            f"plot_sensitivity expects a tuning_report DataFrame; columns {missing} are missing."
        )
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
    return xs


def _draw_lines(fig, ax, report, xs, labels, failed, names, has_std, line, metric) -> dict:
    """One line with error bars per value of ``line``; returns each line's dodged transform."""
    from matplotlib.transforms import offset_copy

    dodge: dict[str, Any] = {}
    for k, label in enumerate(names):
        shift = (k - (len(names) - 1) / 2) * _DODGE_POINTS if has_std else 0.0
        dodge[label] = offset_copy(ax.transData, fig=fig, x=shift, y=0, units="points")
        rows = report[(labels == label) & ~failed]
        order = np.argsort(xs[rows.index].to_numpy(), kind="stable")
        rx = xs[rows.index].to_numpy()[order]
        ry = rows["mean"].to_numpy(dtype=float)[order]
        err = rows["std"].to_numpy(dtype=float)[order] if has_std else None
        name = f"{line}={label}" if line is not None else metric
        bars = ax.errorbar(rx, ry, yerr=err, marker="o", capsize=3, label=name)
        # moved after drawing with the data transform, which sets the axes' limits
        for artist in (bars.lines[0], *bars.lines[1], *bars.lines[2]):
            if artist is not None:
                artist.set_transform(dodge[label])
    return dodge


def _draw_marks(ax, report, xs, labels, failed, names, dodge) -> None:
    """Hollow points for maps a halving search stopped early, a star on the chosen best, red
    crosses at the bottom for failed trials."""
    if "rung" in report.columns:
        early = (report["rung"] < report["rung"].max()) & ~failed
        for label in names:
            rows = report[early & (labels == label)]
            if len(rows):
                ax.plot(
                    xs[rows.index], rows["mean"], linestyle="none", marker="o",
                    markerfacecolor="white", markeredgecolor="gray", zorder=4,
                    label="stopped at an earlier rung" if label == names[0] else None,
                )[0].set_transform(dodge[label])  # fmt: skip
    if "best" in report.columns and report["best"].any():
        best = report[report["best"].astype(bool) & ~failed]
        if len(best):
            ax.plot(
                xs[best.index], best["mean"], linestyle="none", marker="*", markersize=16,
                color="gold", markeredgecolor="black", label="chosen best", zorder=5,
            )[0].set_transform(dodge.get(labels[best.index[0]], ax.transData))  # fmt: skip
    if failed.any():
        ax.plot(
            xs[failed], np.full(int(failed.sum()), 0.03), linestyle="none", marker="X",
            markersize=10, color="red", label=f"failed trial ({int(failed.sum())})",
            transform=ax.get_xaxis_transform(), clip_on=False,
        )  # fmt: skip


def _style_axes(ax, xs: pd.Series, x: str, log_x: bool) -> None:
    """The x axis: log scale, a tick at every tried value (up to 12), room at both ends."""
    from matplotlib.ticker import FixedLocator, NullLocator

    if log_x:
        ax.set_xscale("log")
    tried = sorted(set(xs.tolist()))
    if len(tried) <= 12:  # a tick at every tried value, named as given
        ax.xaxis.set_major_locator(FixedLocator(tried))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([value_label(v) for v in tried])
    if len(tried) > 1 and log_x:  # room for the dodged points at both ends
        low, high = math.log10(tried[0]), math.log10(tried[-1])
        pad = 0.06 * (high - low)
        ax.set_xlim(10 ** (low - pad), 10 ** (high + pad))
    ax.set_xlabel(x + (" (log scale)" if log_x else ""))
    ax.grid(True, which="major", alpha=0.3)
