"""Tune TFClassifier from start to finish: search, report, plot, save and test the best model.

:func:`tune_classifier` is the workflow behind ``sparktf tune`` and ``sparktf demo``, for use from
Python as well: it builds the TFClassifier and the param maps of a :class:`SearchSpace` (a grid or
random samples), fits a ``CrossValidator`` or a ``TrainValidationSplit`` (every setting of a fold
trains as its own Spark task), then writes the tuning report, the sensitivity plot and the best
model, and scores the best model on test data.

It prints nothing itself: progress goes to the ``sparktf.workflow`` logger (INFO), and the
results (the report table, the best setting, the files written) go, one text at a time, to the
``echo`` callable given (``print``, for instance), or to the same logger without one.

Importing this module imports neither TensorFlow nor Spark.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparktf._tuning_output import (
    report_lines,
    report_table,
    show_summary,
    write_plot,
    write_report_csv,
)

__all__ = ["SearchSpace", "TuningResult", "report_table", "tune_classifier", "write_report_csv"]

logger = logging.getLogger("sparktf.workflow")


@dataclass
class SearchSpace:
    """The searched values of a tuning run (each a list of alternatives)."""

    hiddenLayers: list[list[int]] = field(default_factory=lambda: [[32], [64]])
    learningRate: list[float] = field(default_factory=lambda: [0.001, 0.01])
    epochs: list[int] = field(default_factory=lambda: [10])
    batchSize: list[int] = field(default_factory=lambda: [32])
    convLayers: list[list[int]] = field(default_factory=lambda: [[]])
    trainableLayers: list[int] = field(default_factory=lambda: [0])


def _param_maps(clf: Any, space: SearchSpace, search: str, samples: int, seed: int) -> list:
    from pyspark.ml.tuning import ParamGridBuilder

    from sparktf.tuning import ParamRandomBuilder

    axes = [
        (clf.hiddenLayers, space.hiddenLayers),
        (clf.convLayers, space.convLayers),
        (clf.epochs, space.epochs),
        (clf.batchSize, space.batchSize),
    ]
    if space.trainableLayers != [0]:  # a base's layers that train (searched only when given)
        axes.append((clf.trainableLayers, space.trainableLayers))
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


@dataclass
class TuningResult:
    """What :func:`tune_classifier` produced."""

    report: Any
    best_model: Any
    test_accuracy: float | None
    plot_path: str | None
    seconds: float


def _validator_params(clf: Any, maps: list, evaluator: Any, seed: int) -> dict[str, Any]:
    """The Params every validator of :func:`tune_classifier` is given."""
    return {"estimator": clf, "estimatorParamMaps": maps, "evaluator": evaluator, "seed": seed}


def _pyspark_search(clf: Any, maps: list, evaluator: Any, spec: _Search) -> tuple[Any, str]:
    """The pyspark validator of :func:`tune_classifier` and the line that describes it."""
    from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

    common = {**_validator_params(clf, maps, evaluator, spec.seed), "parallelism": spec.parallelism}
    if spec.validator == "cv":
        plan = f"{len(maps)} settings x {spec.folds} folds = {len(maps) * spec.folds} trainings"
        return CrossValidator(numFolds=spec.folds, **common), plan
    plan = f"{len(maps)} settings on one train/validation split"
    return TrainValidationSplit(trainRatio=spec.train_ratio, **common), plan


def _halving_search(clf: Any, maps: list, evaluator: Any, spec: _Search) -> tuple[Any, str]:
    """The halving validator of :func:`tune_classifier` and the line that describes it."""
    from sparktf.search import HalvingCrossValidator, HalvingTrainValidationSplit, rung_schedule

    common = {
        **_validator_params(clf, maps, evaluator, spec.seed),
        "factor": spec.halving,
        "checkpointDir": spec.checkpoint_dir or "",
        "trialTimeout": float(spec.trial_timeout),
    }
    if spec.validator == "cv":
        tuner: Any = HalvingCrossValidator(numFolds=spec.folds, **common)
    else:
        tuner = HalvingTrainValidationSplit(trainRatio=spec.train_ratio, **common)
    rungs = rung_schedule(len(maps), clf.getEpochs(), spec.halving)
    steps = ", ".join(f"{r.maps} x {r.epochs} epochs" for r in rungs)
    where = f"{spec.folds} folds" if spec.validator == "cv" else "one train/validation split"
    return tuner, f"{len(maps)} settings on {where}, halving by {spec.halving}: {steps}"


def tune_classifier(
    train: Any,
    output: str,
    *,
    test: Any | None = None,
    space: SearchSpace | None = None,
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
    echo: Callable[[str], Any] | None = None,
    data_name: str | None = None,
    halving: int | None = None,
    checkpoint_dir: str | None = None,
    trial_timeout: float = 0.0,
    params: dict[str, Any] | None = None,
    track: str | None = None,
) -> TuningResult:
    """Search TFClassifier settings on ``train``, score the best on ``test``, write the results.

    Every fold trains all settings as one Spark job; the best setting is then refitted on all of
    ``train``. Writes into the folder ``output`` (created if needed):

    * ``report.csv``: the :func:`~sparktf.tuning.tuning_report` table, best first, list values
      as text, the metric to 4 decimals and seconds to 1 (:func:`write_report_csv`);
    * ``sensitivity.png``: the validation accuracy against the first numeric searched value that
      varies, one line per value of another (none when no numeric value is searched);
    * ``best_model/``: the best ``TFClassificationModel``, saved with pyspark.ml persistence;
    * ``best_model.keras``: the same network as a plain Keras file.

    Parameters
    ----------
    train, test:
        DataFrames with ``features_col`` (an ml Vector, an array of numbers, or an image
        column: encoded bytes, Spark image structs or paths) and ``label_col``
        (integers ``0..K-1``); ``test`` (optional) gives the test accuracy of the best model.
    output:
        Folder receiving the files above.
    space:
        The searched values (default: ``SearchSpace()``).
    search:
        ``"grid"``: every combination; ``"random"``: ``samples`` settings, the learning rate
        drawn log-uniformly between the smallest and largest of ``space.learningRate``, the
        other values from their lists.
    seed:
        Seed of the sampling, the folds or split, and the trainings.
    validator:
        ``"cv"``: a ``CrossValidator`` with ``folds`` folds (at least 2); ``"tvs"``: a
        ``TrainValidationSplit`` training on a ``train_ratio`` fraction of the rows.
    dropout, input_shape:
        Fixed Params of the TFClassifier (not searched).
    parallelism:
        How many of the fitted models the validator scores at once.
    halving:
        Search by successive halving with this factor (:mod:`sparktf.search`:
        ``HalvingCrossValidator`` or ``HalvingTrainValidationSplit``; ``1``: exhaustive, with
        every fold in one job) instead of pyspark's validators; ``space.epochs`` must then hold
        one value, the budget every rung spends up to.
    checkpoint_dir, trial_timeout:
        With ``halving``: the folder finished trials are written to (a rerun with the same
        folder resumes), and the seconds one trial may train (0: no limit).
    params:
        More fixed Params of the TFClassifier, by name (for example ``baseModel``,
        ``imageScaling`` and ``fineTuneEpochs`` to fine-tune a pretrained network on an image
        column; ``space.trainableLayers`` then searches how many of its layers train).
    track:
        The MLflow experiment to track the tuning in (needs the mlflow package; the tracking
        URI from MLflow's environment): one run for the tuning with its test accuracy, report
        and plot, and nested under it one run per trial as it finishes (a halving search logs
        its grid, summary and best model into it). See docs/tuning.md, "Tracking with MLflow".
    echo:
        Called with each text of the results: the report table, the best setting, the test
        accuracy and the paths written. Default: logged at INFO on ``sparktf.workflow``.
    data_name:
        What ``train`` is, for the plot's title (``validation accuracy, 3-fold
        cross-validation on <data_name>``).

    Returns
    -------
    TuningResult
        The report, the best model, its test accuracy (None without ``test``), the plot's path
        and the seconds the search took.
    """
    from sparktf.tracking._workflow import tuning_run
    from sparktf.tuning import tuning_report

    _check_arguments(search, validator, folds, halving, space)
    show = echo if echo is not None else logger.info
    os.makedirs(output, exist_ok=True)
    search_spec = _Search(
        space if space is not None else SearchSpace(), search, samples, seed, validator, folds,
        train_ratio, parallelism, halving, checkpoint_dir, trial_timeout,
    )  # fmt: skip
    clf = _classifier(search_spec, dropout, input_shape, features_col, label_col)
    clf.setParams(**(params or {}))
    tuner, plan, evaluator = _tuner(clf, search_spec, label_col)
    logger.info("Tuning TFClassifier (%s search): %s, then one refit of the best", search, plan)
    with tuning_run(track, plan) as run:
        if track:  # a halving search tracks itself; pyspark's validators, their classifier
            (tuner if halving is not None else clf).setMlflowExperiment(track)
        tuned, seconds = _fit(tuner, clf, search_spec, train)

        report = tuning_report(tuned, clf)
        write_report_csv(report, os.path.join(output, "report.csv"))
        for text in report_lines(report):
            show(text)
        plot_path = write_plot(report, output, data_name)
        best = tuned.bestModel
        accuracy = None if test is None else float(evaluator.evaluate(best.transform(test)))
        run.results(accuracy, seconds, [os.path.join(output, "report.csv"), plot_path])
    best_dir = _save_best(best, output)
    show_summary(show, report, accuracy, output, plot_path, best_dir)
    return TuningResult(report, best, accuracy, plot_path, seconds)


@dataclass(frozen=True)
class _Search:
    """How :func:`tune_classifier` searches (its arguments of the same names)."""

    space: SearchSpace
    search: str
    samples: int
    seed: int
    validator: str
    folds: int
    train_ratio: float
    parallelism: int
    halving: int | None
    checkpoint_dir: str | None
    trial_timeout: float


def _check_arguments(
    search: str, validator: str, folds: int, halving: int | None, space: SearchSpace | None
) -> None:
    if search not in ("grid", "random"):
        raise ValueError(f"tune_classifier: search must be 'grid' or 'random', got {search!r}")
    if validator not in ("cv", "tvs"):
        raise ValueError(f"tune_classifier: validator must be 'cv' or 'tvs', got {validator!r}")
    if validator == "cv" and folds < 2:
        raise ValueError(f"tune_classifier: a CrossValidator needs folds >= 2, got {folds}")
    epochs = (space if space is not None else SearchSpace()).epochs
    if halving is not None and len(epochs) != 1:
        raise ValueError(
            "tune_classifier: a halving search spends epochs rung by rung up to one budget; "
            f"give space.epochs one value, got {epochs}"
        )


def _classifier(
    spec: _Search, dropout: float, input_shape: Sequence[int], features_col: str, label_col: str
) -> Any:
    """The searched TFClassifier with its fixed Params (a halving search's epoch budget too)."""
    from sparktf.classification import TFClassifier

    clf = TFClassifier(
        featuresCol=features_col,
        labelCol=label_col,
        dropout=dropout,
        inputShape=list(input_shape),
        seed=spec.seed,
    )
    if spec.halving is not None:
        clf.setEpochs(spec.space.epochs[0])
    return clf


def _tuner(clf: Any, spec: _Search, label_col: str) -> tuple[Any, str, Any]:
    """The validator that searches ``spec``'s settings, the line describing it, its evaluator."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    space = spec.space
    if spec.halving is not None:
        space = SearchSpace(**{**vars(space), "epochs": space.epochs[:1]})
    maps = _param_maps(clf, space, spec.search, spec.samples, spec.seed)
    evaluator = MulticlassClassificationEvaluator(
        labelCol=label_col, predictionCol="prediction", metricName="accuracy"
    )
    if spec.halving is None:
        return (*_pyspark_search(clf, maps, evaluator, spec), evaluator)
    # The budget is the estimator's, not a searched value.
    maps = [{p: v for p, v in pm.items() if p.name != "epochs"} for pm in maps]
    return (*_halving_search(clf, maps, evaluator, spec), evaluator)


def _fit(tuner: Any, clf: Any, spec: _Search, train: Any) -> tuple[Any, float]:
    """Fit ``tuner`` on ``train``, its trials named by round: the fitted model and its seconds."""
    from sparktf.training._trials import named_rounds

    start = time.time()
    with named_rounds(clf, spec.folds if spec.validator == "cv" else None):
        tuned = tuner.fit(train)
    seconds = time.time() - start
    logger.info("Tuning finished in %.1fs", seconds)
    return tuned, seconds


def _save_best(best: Any, output: str) -> str:
    """Save the best model in ``output`` (``best_model/`` and ``best_model.keras``): its folder."""
    best_dir = os.path.join(output, "best_model")
    best.write().overwrite().save(best_dir)
    with open(os.path.join(output, "best_model.keras"), "wb") as handle:
        handle.write(best.modelBytes)
    return best_dir
