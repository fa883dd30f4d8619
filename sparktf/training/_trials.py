"""The driver side of ``TFClassifier.fit``/``fitMultiple``: trials, their labels and failures.

:class:`TrialIterator` is what ``fitMultiple`` returns: the thread-safe iterator pyspark's
validators consume. On first use it trains every param map: the maps are grouped by their data
setting (which columns they read, and how), the data of each setting is collected (or staged)
once, and each setting's maps train as one Spark job
(:func:`sparktf.training._distributed.run_trainings`). A grid that does not tune the data Params is
one setting, so one job. Each call's trials are written in the classifier's
:class:`~sparktf.training._book.TrialBook`, from which the validator's refit takes them.

Which failures are trials, and which are errors
-----------------------------------------------
A failed training is a *trial* that scores worst (a model without a network, see
``TFClassificationModel.trainingFailure``) only where sparktf is told it is one:

* inside ``fitMultiple``: every map of the call is a trial, and if every map fails the call
  raises :class:`~sparktf.errors.TrainingError`;
* inside a :func:`~sparktf.training._book.trial_scope`, opened around a validator's ``fit`` for
  a TFClassifier that sits in a ``Pipeline``. pyspark's validators fit a Pipeline one map at a
  time through ``Pipeline.fit``, which reaches ``TFClassifier.fit`` in one of the validator's
  pool threads; nothing in that call tells a trial from the validator's final refit of the best
  map or from a user's own ``pipeline.fit(df, params)``, so sparktf does not guess. In the scope
  every failed fit of the scope's classifiers scores worst and is counted; when the scope ends,
  it raises :class:`~sparktf.errors.TrainingError` if the last fit failed: that is the refit of
  the chosen map (the validator's last fit), and it fails whenever every trial failed.

Everywhere else (``clf.fit(df)``, ``pipeline.fit(df)``, the refit of a bare TFClassifier in a
validator) a failed training raises ``TrainingError``. The scope lives in the classifier's
trial book, seen by every copy and every thread, because the validator's trials run in its own
thread pool, where a thread-local or context variable of the caller would not reach.

A failed trial's model scores worst only in the validator's evaluation
-----------------------------------------------------------------------
Its ``transform`` predicts a wrong class for every labelled row, so that any evaluator ranks it
last; that is right in a search and wrong anywhere else. The model holds an
:class:`EvaluationPass` that admits such a transform only where a validator evaluates it:
pyspark's validators take each model from ``fitMultiple``'s iterator and transform the
validation data with it at once, in the thread that took it (``_parallelFitTasks``), so each
hand-out admits one transform in that thread; a Pipeline's trial is admitted while its
classifier's trial scope is open. Any other transform of the model (a second one, one kept in
``subModels``, saved and loaded, or a halving validator's sub-model) raises ``TrainingError``
naming the failure.

The estimator is passed in as a :class:`sparktf.training._plans.Trainable`, so this module never
imports the stage module.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from sparktf._loading import model_key
from sparktf.errors import TrainingError
from sparktf.tracking._mlflow import active_run_id
from sparktf.training._bases import read_bases, with_bases
from sparktf.training._book import TrialRun, named_rounds, trial_scope
from sparktf.training._data import training_data
from sparktf.training._plans import Trainable

__all__ = [
    "EvaluationPass",
    "TrialIterator",
    "fit_one",
    "named_rounds",
    "param_label",
    "trial_scope",
    "varying_labels",
]

logger = logging.getLogger("sparktf")


def varying_labels(param_maps: list[dict]) -> list[str]:
    """:func:`param_label` of each map, naming only the Params whose values differ between the
    maps (all of them when none differ)."""
    values: dict[str, set[str]] = {}
    for param_map in param_maps:
        for param, value in param_map.items():
            values.setdefault(param.name, set()).add(repr(value))
    varying = {name for name, seen in values.items() if len(seen) > 1}
    if not varying:
        return [param_label(pm) for pm in param_maps]
    return [param_label({p: v for p, v in pm.items() if p.name in varying}) for pm in param_maps]


def param_label(param_map: dict) -> str:
    """A short readable name of a param map, for progress lines and messages."""
    if not param_map:
        return "defaults"
    parts = []
    for param, value in param_map.items():
        text = str(value)
        if len(text) > 40:
            text = f"<{len(text)} chars, sha256 {model_key(text.encode())[:8]}>"
        parts.append(f"{param.name}={text}")
    return ", ".join(parts)


def _check_workers(spark, specs) -> None:
    """Before any data is read: the cluster can run the largest group of workers at once."""
    workers = max(spec.num_workers for spec in specs)
    if workers > 1:
        from sparktf.training._multiworker import check_slots

        check_slots(spark, workers)


class EvaluationPass:
    """Admits the transforms of a failed trial's model that are its validator's evaluation (see
    the module's notes): one per :meth:`grant`, in the granting thread, and any while a trial
    scope of ``book`` is open. Shared by the model's copies (pyspark's ``copy`` is shallow)."""

    def __init__(self, book: Any) -> None:
        self._book = book
        self._lock = threading.Lock()
        self._thread: int | None = None

    def __reduce__(self):
        return (type(None), ())  # a pickled or deep-copied model is no trial in a search

    def grant(self) -> None:
        """Admit one transform in the calling thread (the model was just handed out)."""
        with self._lock:
            self._thread = threading.get_ident()

    def admit(self) -> bool:
        """Whether this transform is the validator's evaluation; uses up a grant."""
        if self._book.in_scope():
            return True
        with self._lock:
            if self._thread != threading.get_ident():
                return False
            self._thread = None
            return True


def _check_tracking(est) -> None:
    """Before any job: MLflow is there when the classifier's ``mlflowExperiment`` asks for it."""
    if est.getMlflowExperiment():
        from sparktf.tracking._mlflow import import_mlflow

        import_mlflow()


def _track(est, param_maps, results, labels, job: str, multiple: bool, parent=None) -> None:
    """Log the trials to MLflow when the classifier's ``mlflowExperiment`` asks for it, nested
    under ``parent`` (the run that was active where the trials were asked for)."""
    experiment = est.getMlflowExperiment()
    if experiment:
        from sparktf.tracking import FitTracker

        FitTracker(experiment).log(est, param_maps, results, labels, job, multiple, parent)


def fit_one(est: Trainable, dataset: Any):
    """``TFClassifier._fit``: one training task; a failure raises unless it is a trial."""
    from sparktf.training._distributed import run_trainings

    spec = est._training_spec()
    _check_tracking(est)
    _check_workers(dataset.sparkSession, [spec])
    bases = read_bases(dataset.sparkSession, [spec])
    book = est._trial_book
    job = book.job_name(est.uid, True)
    with training_data(est._data_spec(), dataset) as data:
        data, (spec,) = with_bases(data, [spec], bases)
        (result,) = run_trainings(dataset.sparkSession, data, [spec], name=job, strict=False)
    model = est._model_from_result(result, data, {})
    _track(est, [{}], [result], [""], job, False, active_run_id())
    explicit = {p: est.getOrDefault(p) for p in est.params if est.isSet(p)}
    in_scope = book.single_fit(est.uid, explicit, result, model)
    error = result["error"]
    if error:
        if est.getFailOnTrialError():
            raise TrainingError(f"TFClassifier training failed: {error}")
        if not in_scope:
            raise TrainingError(
                f"TFClassifier training failed: {error}. (To let a search over a Pipeline go on "
                "past failed trials, fit the validator inside "
                "sparktf.classification.trial_scope(pipeline).)"
            )
        logger.warning(
            "TFClassifier trial [%s] failed and will score worst: %s",
            param_label({p: v for p, v in explicit.items() if p.name != "kerasModel"}),
            error,
        )
        model._trial_pass = EvaluationPass(book)  # admitted while the scope is open
    return model


class TrialIterator:
    """Thread-safe iterator of fitMultiple results; the Spark jobs run once, on first use."""

    def __init__(self, est, dataset, param_maps, estimators, specs) -> None:
        self.est = est
        self.dataset = dataset
        self.param_maps = param_maps
        self.estimators = estimators
        self.specs = specs
        self.lock = threading.Lock()
        self.results: list[Any] | None = None
        self.error: BaseException | None = None
        self.counter = 0
        # pyspark's validators take the models in threads of their own, where MLflow's active
        # run (a thread's) is not the one of the thread that asked for them
        self.parent_run = active_run_id()

    def __iter__(self):
        return self

    def _groups(self) -> list[list[int]]:
        """The map indices of each data setting, in order of first appearance.

        The setting is every field of the map's DataSpec but the seed and the workers: maps that
        read the same columns the same way share one collect (or staging), whatever their seeds
        and numWorkers.
        """
        groups: dict[Any, list[int]] = {}
        for index, est in enumerate(self.estimators):
            key = dataclasses.replace(est._data_spec(), seed=0, workers=1)
            groups.setdefault(key, []).append(index)
        return list(groups.values())

    def _run(self) -> None:
        from sparktf.training._distributed import run_trainings

        labels = varying_labels(list(self.param_maps))
        _check_tracking(self.est)
        _check_workers(self.dataset.sparkSession, self.specs)
        bases = read_bases(self.dataset.sparkSession, self.specs)
        groups = self._groups()
        strict = any(est.getFailOnTrialError() for est in self.estimators)
        results: list[Any] = [None] * len(self.param_maps)
        models: list[Any] = [None] * len(self.param_maps)
        search = self.est._trial_book.job_name(self.est.uid, False)
        for number, indices in enumerate(groups, start=1):
            first = self.estimators[indices[0]]
            name = search
            if len(groups) > 1:
                name += f" (data setting {number}/{len(groups)})"
            workers = max(self.estimators[i].getNumWorkers() for i in indices)
            spec = dataclasses.replace(first._data_spec(), workers=workers)
            with training_data(spec, self.dataset) as data:
                data, specs = with_bases(data, [self.specs[i] for i in indices], bases)
                trained = run_trainings(
                    self.dataset.sparkSession,
                    data,
                    specs,
                    labels=[labels[i] for i in indices],
                    name=name,
                    strict=strict,
                )
            for index, result in zip(indices, trained, strict=True):
                result["index"] = index
                results[index] = result
                models[index] = self.estimators[index]._model_from_result(
                    result, data, self.param_maps[index]
                )
                if result["error"]:
                    models[index]._trial_pass = EvaluationPass(self.est._trial_book)
            del data
        failures = [r for r in results if r["error"]]
        if failures and len(failures) == len(results):  # the search ends: no refit to keep them
            details = "; ".join(f"[{labels[r['index']]}] {r['error']}" for r in failures[:5])
            raise TrainingError(
                f"All {len(results)} trials of TFClassifier failed; none can be chosen. "
                f"Errors: {details}"
            )
        _track(self.est, list(self.param_maps), results, labels, search, True, self.parent_run)
        self.est._trial_book.write(TrialRun.of(True, self.param_maps, results))
        for record in failures:
            logger.warning(
                "TFClassifier trial [%s] failed and will score worst: %s",
                labels[record["index"]],
                record["error"],
            )
        self.results = models

    def __next__(self) -> tuple[int, Any]:
        with self.lock:
            if self.error is not None:
                raise self.error
            if self.results is None:
                try:
                    self._run()
                except BaseException as exc:
                    self.error = exc
                    raise
            assert self.results is not None
            if self.counter >= len(self.results):
                raise StopIteration("No models remaining.")
            index = self.counter
            self.counter += 1
            model = self.results[index]
            if model._trial_pass is not None:
                model._trial_pass.grant()  # the validator evaluates it next, in this thread
            return index, model
