"""What a tuning run of :func:`sparktf.workflow.tune_classifier` writes and shows: the report
as a table and CSV, the sensitivity plot's axes and file, and the summary of the best setting.

Importing this module imports neither TensorFlow nor Spark.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["report_lines", "report_table", "show_summary", "write_plot", "write_report_csv"]


def _plot_axes(report: Any) -> tuple[str, str | None] | None:
    """Which Params the sensitivity plot shows: x (numeric) and one line per value of another."""
    params = list(report.attrs.get("params", []))

    def varies(name: str) -> bool:
        return report[name].map(_format_cell).nunique() > 1

    numeric = [p for p in ("learningRate", "epochs", "batchSize") if p in params]
    if not numeric:
        return None
    x = next((p for p in numeric if varies(p)), numeric[0])
    line = next((p for p in params if p != x and varies(p)), None)
    return x, line


def _format_cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_cell(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _format_cell(value.tolist())
    return str(value)


def report_table(report: Any) -> Any:
    """The tuning report with list values as text, ready for CSV or printing."""
    table = report.copy()
    for column in table.columns:
        if table[column].map(lambda v: isinstance(v, (list, tuple))).any():
            table[column] = table[column].map(_format_cell)
    return table


def write_report_csv(report: Any, path: str) -> None:
    """Write the tuning report as CSV, best first like the printed table: list values as text,
    the metric's mean and std to 4 decimals, seconds to 1 (the searched values as given)."""
    table = report_table(report).sort_values("rank", kind="stable")
    table = table.round({"mean": 4, "std": 4, "seconds": 1})
    table.to_csv(path, index=False)


def report_lines(report: Any) -> list[str]:
    """The tuning report as printed: a title line, then the table (one string), best first."""
    table = report_table(report)
    columns = [*report.attrs.get("params", []), "mean", "std", "seconds", "rank", "best"]
    if table["failure"].astype(str).str.len().gt(0).any():
        columns.append("failure")
    shown = table[[c for c in columns if c in table.columns]].sort_values("rank")
    metric = report.attrs.get("metric", "metric")
    text = shown.to_string(
        index=False,
        formatters={
            "mean": "{:.4f}".format,
            "std": "{:.4f}".format,
            "seconds": "{:.1f}".format,
        },
    )
    return [f"Tuning report ({metric}, best first):", text]


def write_plot(report: Any, output: str, data_name: str | None) -> str | None:
    """``sensitivity.png`` in ``output``, or None when no numeric searched value varies."""
    from sparktf.tuning import plot_sensitivity

    axes = _plot_axes(report)
    if axes is None:
        return None
    x, line = axes
    path = os.path.join(output, "sensitivity.png")
    return plot_sensitivity(report, x=x, line=line, path=path, data=data_name)


def show_summary(show, report, accuracy, output, plot_path, best_dir) -> None:
    """Show the best setting, the test accuracy and the paths written."""
    chosen = report[report["best"]].iloc[0]
    settings = ", ".join(
        f"{name}={_format_cell(chosen[name])}" for name in report.attrs.get("params", [])
    )
    show("")
    show(f"Best setting: {settings} (validation accuracy {chosen['mean']:.4f})")
    if accuracy is not None:
        show(f"Test accuracy of the best model: {accuracy:.4f}")
    show(f"Report:      {os.path.join(output, 'report.csv')}")
    if plot_path:
        show(f"Plot:        {plot_path}")
    show(f"Best model:  {best_dir} (TFClassificationModel.load)")
    show(f"Keras file:  {os.path.join(output, 'best_model.keras')}")
