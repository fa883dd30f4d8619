"""The tuning run behind ``sparktf tune`` and ``sparktf demo``: search TFClassifier settings with
a CrossValidator or a TrainValidationSplit, then report, plot and save the best model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sparktf.cli._console import Console, UsageError


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


def _print_report(console: Console, report: Any) -> None:
    table = report_table(report)
    columns = [*report.attrs.get("params", []), "mean", "std", "seconds", "rank", "best"]
    if table["failure"].astype(str).str.len().gt(0).any():
        columns.append("failure")
    shown = table[[c for c in columns if c in table.columns]].sort_values("rank")
    metric = report.attrs.get("metric", "metric")
    console.out(f"Tuning report ({metric}, best first):")
    console.out(
        shown.to_string(
            index=False,
            formatters={
                "mean": "{:.4f}".format,
                "std": "{:.4f}".format,
                "seconds": "{:.1f}".format,
            },
        )
    )


@dataclass
class SearchSpace:
    """The searched values of a tuning run (each a list of alternatives)."""

    hiddenLayers: list[list[int]] = field(default_factory=lambda: [[32], [64]])
    learningRate: list[float] = field(default_factory=lambda: [0.001, 0.01])
    epochs: list[int] = field(default_factory=lambda: [10])
    batchSize: list[int] = field(default_factory=lambda: [32])
    convLayers: list[list[int]] = field(default_factory=lambda: [[]])


def _param_maps(clf: Any, space: SearchSpace, search: str, samples: int, seed: int) -> list:
    from pyspark.ml.tuning import ParamGridBuilder

    from sparktf.tuning import ParamRandomBuilder

    axes = [
        (clf.hiddenLayers, space.hiddenLayers),
        (clf.convLayers, space.convLayers),
        (clf.epochs, space.epochs),
        (clf.batchSize, space.batchSize),
    ]
    if search == "grid":
        grid = ParamGridBuilder()
        for param, values in [*axes, (clf.learningRate, space.learningRate)]:
            grid.addGrid(param, values)
        return grid.build()
    builder = ParamRandomBuilder()
    rates = space.learningRate
    if min(rates) < max(rates):
        builder.addLogUniform(clf.learningRate, min(rates), max(rates))
    else:
        builder.addChoice(clf.learningRate, rates[:1])
    for param, values in axes:
        builder.addChoice(param, values)
    return builder.build(samples, seed=seed)


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


@dataclass
class TuningResult:
    """What :func:`run_tuning` produced."""

    report: Any
    best_model: Any
    test_accuracy: float | None
    plot_path: str | None
    seconds: float


def run_tuning(
    train: Any,
    test: Any | None,
    space: SearchSpace,
    output: str,
    console: Console,
    *,
    search: str = "grid",
    samples: int = 8,
    seed: int = 42,
    validator: str = "cv",
    folds: int = 3,
    train_ratio: float = 0.75,
    dropout: float = 0.1,
    input_shape: Sequence[int] = (),
    features_col: str = "features",
    label_col: str = "label",
    parallelism: int = 4,
) -> TuningResult:
    """Search TFClassifier settings on ``train``, score the best on ``test``, write results.

    Writes ``report.csv``, ``sensitivity.png``, ``best_model/`` and ``best_model.keras`` into
    ``output`` and prints the report table. Every fold trains all settings as one Spark job;
    ``parallelism`` is how many of the fitted models the validator scores at once.
    """
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

    from sparktf.classification import TFClassifier
    from sparktf.tuning import plot_sensitivity, tuning_report

    os.makedirs(output, exist_ok=True)
    clf = TFClassifier(
        featuresCol=features_col,
        labelCol=label_col,
        dropout=dropout,
        inputShape=list(input_shape),
        seed=seed,
    )
    maps = _param_maps(clf, space, search, samples, seed)
    evaluator = MulticlassClassificationEvaluator(
        labelCol=label_col, predictionCol="prediction", metricName="accuracy"
    )
    if validator == "cv":
        if folds < 2:
            raise UsageError(f"--folds must be >= 2 for a CrossValidator, got {folds}")
        tuner: Any = CrossValidator(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=evaluator,
            numFolds=folds,
            seed=seed,
            parallelism=parallelism,
        )
        plan = f"{len(maps)} settings x {folds} folds = {len(maps) * folds} trainings"
    else:
        tuner = TrainValidationSplit(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=evaluator,
            trainRatio=train_ratio,
            seed=seed,
            parallelism=parallelism,
        )
        plan = f"{len(maps)} settings on one train/validation split"
    console.step(f"Tuning TFClassifier ({search} search): {plan}, then one refit of the best")
    start = time.time()
    tuned = tuner.fit(train)
    seconds = time.time() - start
    console.step(f"Tuning finished in {seconds:.1f}s")

    report = tuning_report(tuned, clf)
    report_table(report).to_csv(os.path.join(output, "report.csv"), index=False)
    _print_report(console, report)

    plot_path = None
    axes = _plot_axes(report)
    if axes is not None:
        x, line = axes
        plot_path = plot_sensitivity(
            report,
            x=x,
            line=line,
            path=os.path.join(output, "sensitivity.png"),
            title=f"validation {report.attrs.get('metric', 'metric')} against {x}",
        )

    best = tuned.bestModel
    accuracy = None
    if test is not None:
        accuracy = float(evaluator.evaluate(best.transform(test)))
    best_dir = os.path.join(output, "best_model")
    best.write().overwrite().save(best_dir)
    with open(os.path.join(output, "best_model.keras"), "wb") as handle:
        handle.write(best.modelBytes)

    chosen = report[report["best"]].iloc[0]
    settings = ", ".join(
        f"{name}={_format_cell(chosen[name])}" for name in report.attrs.get("params", [])
    )
    console.out("")
    console.out(f"Best setting: {settings} (validation accuracy {chosen['mean']:.4f})")
    if accuracy is not None:
        console.out(f"Test accuracy of the best model: {accuracy:.4f}")
    console.out(f"Report:      {os.path.join(output, 'report.csv')}")
    if plot_path:
        console.out(f"Plot:        {plot_path}")
    console.out(f"Best model:  {best_dir} (TFClassificationModel.load)")
    console.out(f"Keras file:  {os.path.join(output, 'best_model.keras')}")
    return TuningResult(report, best, accuracy, plot_path, seconds)
