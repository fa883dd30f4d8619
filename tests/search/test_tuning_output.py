"""How a tuning report reads: plot_sensitivity's refusals and log axis, the printed report in an
80-column terminal, the CSV written from it, the plot's ticks, error bars and title, and the
labels of list values."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.tuning import ParamGridBuilder
from tuning_support import _cv_model, _png_size, _refit, _run

from sparktf import TFClassifier
from sparktf._sensitivity import value_label as _label
from sparktf.tuning import plot_sensitivity, tuning_report


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"x": "batchSize"},
            r"plot_sensitivity: x='batchSize' is not a Param column of the report. "
            r"Param columns: \['hiddenLayers', 'learningRate'\].",
        ),
        ({"line": "optimizer"}, r"line='optimizer' is not a Param column of the report"),
        ({"x": "mean"}, r"x='mean' is not a Param column"),
        ({"x": "hiddenLayers", "line": None}, r"x='hiddenLayers' must hold numbers in every row"),
    ],
)
def test_plot_errors(spark, tmp_path, kwargs, message):
    clf = TFClassifier()
    maps = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[8], [16]])
        .addGrid(clf.learningRate, [0.01, 0.1])
        .build()
    )
    report = tuning_report(_cv_model(None, maps, [0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match=message):
        plot_sensitivity(report, path=str(tmp_path / "p.png"), **kwargs)
    assert not (tmp_path / "p.png").exists()


def test_plot_log_axis_needs_positive_x(spark, tmp_path):
    clf = TFClassifier()
    maps = ParamGridBuilder().addGrid(clf.dropout, [0.0, 0.5]).build()
    report = tuning_report(_cv_model(None, maps, [0.1, 0.2]))
    with pytest.raises(ValueError, match=r"a log x axis needs positive values of 'dropout'"):
        plot_sensitivity(report, x="dropout", line=None, path=str(tmp_path / "p.png"))
    path = plot_sensitivity(
        report, x="dropout", line=None, path=str(tmp_path / "p.png"), log_x=False
    )
    assert _png_size(path) == (640, 420)


def _grid_report(failure: str = ""):
    clf = TFClassifier()
    maps = (
        ParamGridBuilder()
        .addGrid(clf.hiddenLayers, [[8], [16, 8]])
        .addGrid(clf.learningRate, [0.001, 0.003, 0.01, 0.1])
        .build()
    )
    metrics = [0.81234567, 0.9, 0.93, 0.7, 0.83, 0.91, 0.95, 0.6]
    stds = [0.011, 0.02, 0.015, 0.05, 0.012, 0.018, 0.01, 0.04]
    errors = [None] * 7 + [failure or None]
    best = _refit(clf, *_run(maps, [1.234] * 8, errors), *_run(maps, [2.0] * 8, errors))
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return tuning_report(
        _cv_model(clf, maps, metrics, stds=stds, evaluator=evaluator, folds=3, best=best)
    )


def test_a_printed_report_shows_every_column_in_an_80_column_terminal(spark):
    import pandas as pd

    failure = "training loss became nan at epoch 3, by batch 64 (a long message, in full)"
    report = _grid_report(failure)
    # pandas on an 80-column terminal: as many columns as fit, the rest cut to '...'
    with pd.option_context("display.width", 80, "display.max_columns", 0):
        text = str(report)
        plain = str(pd.DataFrame(report))
    assert "..." in plain  # what a plain DataFrame shows there
    assert "..." not in text
    for column in report.columns:
        assert column in text
    assert failure in text
    assert max(len(line) for line in text.splitlines()) <= 80  # wrapped, not cut
    assert isinstance(report, pd.DataFrame) and type(report[["mean"]]) is type(report)


def test_report_csv_is_best_first_and_rounded(spark, tmp_path):
    import pandas as pd

    from sparktf.workflow import write_report_csv

    report = _grid_report()
    write_report_csv(report, str(tmp_path / "report.csv"))
    text = (tmp_path / "report.csv").read_text()
    csv = pd.read_csv(tmp_path / "report.csv")
    assert list(csv["rank"]) == list(range(1, 9))
    assert list(csv["mean"]) == sorted(csv["mean"], reverse=True)
    assert csv["mean"].iloc[5] == 0.8123 and csv["std"].iloc[5] == 0.011
    assert set(csv["seconds"]) == {1.6}  # mean of 1.234 and 2.0, to one decimal
    assert "0.81234567" not in text and "1.617" not in text
    assert csv["hiddenLayers"].iloc[0] == "[16, 8]" and csv["learningRate"].iloc[0] == 0.01


def test_plot_ticks_every_tried_value_dodges_error_bars_and_names_the_validation(spark):
    from sparktf.report import sensitivity_figure

    report = _grid_report()
    fig = sensitivity_figure(report, data="the digits")
    (ax,) = fig.axes
    assert list(ax.get_xticks()) == [0.001, 0.003, 0.01, 0.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.003", "0.01", "0.1"]
    assert ax.get_title() == "validation accuracy, 3-fold cross-validation on the digits"
    # the two lines' points at one learning rate sit apart on the screen, by the same distance
    bars = [c for c in ax.containers if c.get_label().startswith("hiddenLayers=")]
    lines = [bar.lines[0] for bar in bars]
    assert len(lines) == 2
    screen = [line.get_transform().transform(line.get_xydata()) for line in lines]
    gaps = screen[1][:, 0] - screen[0][:, 0]
    assert np.all(gaps > 3) and np.allclose(gaps, gaps[0])
    low, high = ax.get_ylim()  # the axes' limits still follow the points
    assert low <= 0.6 and high >= 0.95
    # a single line is not moved
    single = sensitivity_figure(report, line=None)
    (only,) = [c.lines[0] for c in single.axes[0].containers if c.get_label() == "accuracy"]
    xs = only.get_transform().transform(only.get_xydata())[:, 0]
    assert np.allclose(xs, single.axes[0].transData.transform(only.get_xydata())[:, 0])
    assert single.axes[0].get_title() == "validation accuracy, 3-fold cross-validation"


def test_labels_of_list_values_read_well():
    assert _label([128, 64]) == "[128, 64]"
    assert _label(np.array([16])) == "[16]"
    assert _label(0.001) == "0.001"
