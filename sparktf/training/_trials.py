"""The driver side of ``TFClassifier.fit``/``fitMultiple``: trials, their labels and failures.

:class:`TrialIterator` is what ``fitMultiple`` returns: the thread-safe iterator pyspark's
validators consume. On first use it trains every param map: the maps are grouped by their data
setting (which columns they read, and how), the data of each setting is collected (or staged)
once, and each setting's maps train as one Spark job
(:func:`sparktf.training._distributed.run_trainings`). A grid that does not tune the data Params is
one setting, so one job.

Which failures are trials, and which are errors
-----------------------------------------------
A failed training is a *trial* that scores worst (a model without a network, see
``TFClassificationModel.trainingFailure``) only where sparktf is told it is one:

* inside ``fitMultiple``: every map of the call is a trial, and if every map fails the call
  raises :class:`~sparktf.errors.TrainingError`;
* inside a :func:`trial_scope`, opened around a validator's ``fit`` for a TFClassifier that sits
  in a ``Pipeline``. pyspark's validators fit a Pipeline one map at a time through
  ``Pipeline.fit``, which reaches ``TFClassifier.fit`` in one of the validator's pool threads;
  nothing in that call tells a trial from the validator's final refit of the best map or from a
  user's own ``pipeline.fit(df, params)``, so sparktf does not guess. In the scope every failed
  fit of the scope's classifiers scores worst and is counted; when the scope ends, it raises
  :class:`~sparktf.errors.TrainingError` if the last fit failed: that is the refit of the chosen
  map (the validator's last fit), and it fails whenever every trial failed.

Everywhere else (``clf.fit(df)``, ``pipeline.fit(df)``, the refit of a bare TFClassifier in a
validator) a failed training raises ``TrainingError``. The scope is keyed by the classifier's
uid and seen by every thread, because the validator's trials run in its own thread pool, where
a thread-local or context variable of the caller would not reach.

The estimator is passed in as a :class:`sparktf.training._plans.Trainable`, so this module never
imports the stage module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any

from sparktf._loading import model_key
from sparktf.errors import TrainingError
from sparktf.training._data import training_data
from sparktf.training._plans import Trainable

__all__ = [
    "TrialIterator",
    "TrialScope",
    "fit_one",
    "named_rounds",
    "param_label",
    "trial_scope",
    "varying_labels",
]

logger = logging.getLogger("sparktf")

_scope_lock = threading.Lock()
_open_scopes: dict[str, list[_ScopeRecord]] = {}


@dataclasses.dataclass(eq=False)
class _ScopeRecord:
    """The fits of one classifier inside one :class:`trial_scope`."""

    fits: int = 0
    failures: int = 0
    last_error: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


def _classifier_uids(stage: Any) -> list[str]:
    """The uids of the TFClassifiers in ``stage``: itself, a (nested) Pipeline's, a validator's."""
    if hasattr(stage, "getEstimator"):
        return _classifier_uids(stage.getEstimator())
    if hasattr(stage, "getStages"):
        return [uid for inner in stage.getStages() for uid in _classifier_uids(inner)]
    if isinstance(stage, Trainable):
        return [stage.uid]
    return []


def trial_scope(estimator: Any) -> TrialScope:
    """A ``with`` block within which failed fits of the TFClassifiers in ``estimator`` are trials.

    Wrap a validator's ``fit`` when its estimator is a ``Pipeline`` holding a TFClassifier::

        with trial_scope(pipeline):
            cv_model = cv.fit(train)

    ``estimator`` is the TFClassifier, a Pipeline holding it (nested Pipelines too), or the
    validator. Inside the block a fit of one of those classifiers that fails (an exception in
    its task, a NaN or infinite loss) returns a model that scores worst instead of raising,
    unless ``failOnTrialError`` is set; when the block ends, :class:`TrainingError` is raised
    if the last such fit failed, which is the validator's refit of the chosen map (it fails
    whenever every trial failed). Use one scope per search. A bare TFClassifier in a validator
    needs no scope: ``fitMultiple`` treats its maps as trials on its own.
    """
    return TrialScope(estimator)


class TrialScope:
    """The context manager :func:`trial_scope` returns (see there)."""

    def __init__(self, estimator: Any) -> None:
        self.uids = sorted(set(_classifier_uids(estimator)))
        if not self.uids:
            raise ValueError(
                "trial_scope expects a TFClassifier, a Pipeline holding one, or a validator "
                f"whose estimator holds one. Got {type(estimator).__name__} instead."
            )
        self.records: dict[str, _ScopeRecord] = {}

    def __enter__(self) -> TrialScope:
        with _scope_lock:
            for uid in self.uids:
                self.records[uid] = _ScopeRecord()
                _open_scopes.setdefault(uid, []).append(self.records[uid])
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with _scope_lock:
            for uid, record in self.records.items():
                stack = _open_scopes.get(uid, [])
                if record in stack:
                    stack.remove(record)
                if not stack:
                    _open_scopes.pop(uid, None)
        if exc_type is not None:
            return
        for uid, record in self.records.items():
            if record.last_error is None:
                continue
            if record.failures == record.fits:
                details = "; ".join(record.errors[:5])
                raise TrainingError(
                    f"All {record.fits} fits of TFClassifier {uid} in this trial scope failed; "
                    f"none can be chosen. Errors: {details}"
                )
            raise TrainingError(
                f"The last fit of TFClassifier {uid} in this trial scope (a validator's refit "
                f"of the chosen param map) failed: {record.last_error}"
            )


def _note_fit(uid: str, error: str | None) -> bool:
    """Count a single fit in the innermost open scope of ``uid``; whether there is one."""
    with _scope_lock:
        stack = _open_scopes.get(uid)
        if not stack:
            return False
        record = stack[-1]
        record.fits += 1
        record.last_error = error
        if error:
            record.failures += 1
            record.errors.append(error)
        return True


class _Rounds:
    """The names of one classifier's training jobs within a :func:`named_rounds` block."""

    def __init__(self, folds: int | None) -> None:
        self.folds = folds
        self.calls = 0

    def next_search(self) -> str:
        self.calls += 1
        if self.folds is None:
            return "train/validation split"
        if self.calls <= self.folds:
            return f"fold {self.calls} of {self.folds}"
        return f"search {self.calls}"


_rounds_lock = threading.Lock()
_named_rounds: dict[str, _Rounds] = {}


@contextlib.contextmanager
def named_rounds(uid: str, folds: int | None) -> Iterator[None]:
    """Name the training jobs of the TFClassifier ``uid`` in progress lines, within the block.

    For a validator's ``fit``: with ``folds`` (a CrossValidator) the k-th ``fitMultiple`` is
    ``fold k of n``, without (a TrainValidationSplit) it is the ``train/validation split``; a
    single fit is the ``refit of the best setting``. Outside such a block they are named by
    the classifier's uid: ``<uid> fitMultiple``, ``<uid> fit``.
    """
    with _rounds_lock:
        _named_rounds[uid] = _Rounds(folds)
    try:
        yield
    finally:
        with _rounds_lock:
            _named_rounds.pop(uid, None)


def _job_name(uid: str, single: bool) -> str:
    with _rounds_lock:
        rounds = _named_rounds.get(uid)
        if rounds is None:
            return f"{uid} {'fit' if single else 'fitMultiple'}"
        return "refit of the best setting" if single else rounds.next_search()


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


def fit_one(est: Trainable, dataset: Any):
    """``TFClassifier._fit``: one training task; a failure raises unless it is a trial."""
    from sparktf.training._distributed import record_trials, run_trainings

    spec = est._training_spec()
    _check_workers(dataset.sparkSession, [spec])
    with training_data(est._data_spec(), dataset) as data:
        (result,) = run_trainings(
            dataset.sparkSession, data, [spec], name=_job_name(est.uid, True), strict=False
        )
    explicit = {p: est.getOrDefault(p) for p in est.params if est.isSet(p)}
    record_trials(est.uid, [explicit], [result])
    error = result["error"]
    in_scope = _note_fit(est.uid, error)
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
    return est._model_from_result(result, data, {})


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
        from sparktf.training._distributed import record_trials, run_trainings

        labels = varying_labels(list(self.param_maps))
        _check_workers(self.dataset.sparkSession, self.specs)
        groups = self._groups()
        strict = any(est.getFailOnTrialError() for est in self.estimators)
        results: list[Any] = [None] * len(self.param_maps)
        models: list[Any] = [None] * len(self.param_maps)
        search = _job_name(self.est.uid, False)
        for number, indices in enumerate(groups, start=1):
            first = self.estimators[indices[0]]
            name = search
            if len(groups) > 1:
                name += f" (data setting {number}/{len(groups)})"
            workers = max(self.estimators[i].getNumWorkers() for i in indices)
            spec = dataclasses.replace(first._data_spec(), workers=workers)
            with training_data(spec, self.dataset) as data:
                trained = run_trainings(
                    self.dataset.sparkSession,
                    data,
                    [self.specs[i] for i in indices],
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
            del data
        record_trials(self.est.uid, self.param_maps, results)
        failures = [r for r in results if r["error"]]
        if failures and len(failures) == len(results):
            details = "; ".join(f"[{labels[r['index']]}] {r['error']}" for r in failures[:5])
            raise TrainingError(
                f"All {len(results)} trials of TFClassifier failed; none can be chosen. "
                f"Errors: {details}"
            )
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
            return index, self.results[index]
