"""A TFClassifier's trials: where they are written down, and how they reach the chosen model.

Every TFClassifier has a :class:`TrialBook`, made with it and shared by its copies: pyspark's
``copy`` is shallow, so the copies a validator, a ``Pipeline`` or ``fitMultiple`` make of the
classifier all write to the one book of the classifier the user built.

How the trials of a search reach the fitted validator
-----------------------------------------------------
pyspark's ``CrossValidator`` and ``TrainValidationSplit`` keep the metrics and the best model,
which they fit last, after every trial; the trial models are dropped unless
``collectSubModels`` is set. So the trials travel with the best model:

* each ``fitMultiple`` call writes one *grid run*: its param maps in order, one
  :class:`TrialRecord` per map;
* a single fit outside a :func:`trial_scope` (a validator's refit of the chosen map, or any
  ``fit``) is given every run written since the last such fit, and the book starts afresh;
* inside a :func:`trial_scope`, single fits are trials (a validator fits a Pipeline one map at a
  time): each writes a *single run* of its own Params. When the scope ends, the scope's last fit
  (the validator's refit) is given the scope's runs, its own left out.

The model keeps them in ``history["search"]`` and saves them with its metadata, so
:func:`sparktf.tuning.tuning_report` reads them from the fitted validator, also after ``load``
(:func:`trials_per_map`). A grid run belongs to the validator whose maps it holds, in order; a
single run belongs to every map whose Params of that classifier it agrees with (maps that differ
only in another stage's Params cannot be told apart by the classifier, and share its trials).

The names of the training jobs (``fold 1 of 3``, ``refit of the best setting``) are kept in the
book too (:func:`named_rounds`). A book holds one search at a time: two validators fitted at
once over the same classifier share it, and the first refit takes both searches' runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from sparktf.errors import TrainingError
from sparktf.param import plain_value
from sparktf.training._plans import TrainingResult

__all__ = [
    "KeepsTrials",
    "TrialBook",
    "TrialRecord",
    "TrialRun",
    "TrialScope",
    "classifiers_in",
    "fingerprints",
    "named_rounds",
    "trial_scope",
    "trials_per_map",
]

#: Runs a book keeps unclaimed at most (``fitMultiple`` called again and again, never refit).
_RUN_LIMIT = 1_000


def _plain(value: Any) -> Any:
    """A JSON form of a Param value that is the same before and after its type converter."""
    value = plain_value(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


def fingerprints(param_map: dict) -> dict[str, str]:
    """Param name -> a short text that two equal values share (long values as a sha256)."""
    texts = {}
    for param, value in param_map.items():
        text = json.dumps(_plain(value), sort_keys=True)
        if len(text) > 80:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:20]
        texts[getattr(param, "name", param)] = text
    return texts


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial's training: seconds, error (None when it trained), epochs run, last loss."""

    seconds: float
    error: str | None = None
    epochsRun: int = 0
    finalLoss: float | None = None

    @classmethod
    def of(cls, result: TrainingResult) -> TrialRecord:
        """The record of a training task's result."""
        losses = (result.get("history") or {}).get("loss") or []
        return cls(
            seconds=float(result["seconds"]),
            error=result["error"],
            epochsRun=len(losses),
            finalLoss=float(losses[-1]) if losses else None,
        )


@dataclasses.dataclass(frozen=True)
class TrialRun:
    """The trials of one ``fitMultiple`` call (``grid``), or of one single fit in a scope."""

    grid: bool
    maps: tuple[dict[str, str], ...]
    trials: tuple[TrialRecord, ...]

    @classmethod
    def of(
        cls, grid: bool, param_maps: Sequence[dict], results: Sequence[TrainingResult]
    ) -> TrialRun:
        return cls(
            grid,
            tuple(fingerprints(pm) for pm in param_maps),
            tuple(TrialRecord.of(r) for r in results),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "maps": list(self.maps),
            "trials": [dataclasses.asdict(t) for t in self.trials],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRun:
        trials = tuple(TrialRecord(**t) for t in data["trials"])
        return cls(bool(data["grid"]), tuple(dict(m) for m in data["maps"]), trials)


def trials_per_map(
    search: dict[str, Any], param_maps: Sequence[dict], rounds: int | None = None
) -> list[list[TrialRecord]]:
    """The records of ``search`` (a model's ``history["search"]``) that belong to each map.

    Of the grid runs of these maps, only the newest ``rounds`` (the validator's folds) count:
    an earlier search of the same grid that ended without a refit is not this one.
    """
    uid = search["estimator"]
    keys = [fingerprints({p: v for p, v in pm.items() if p.parent == uid}) for pm in param_maps]
    found: list[list[TrialRecord]] = [[] for _ in param_maps]
    runs = [TrialRun.from_json(r) for r in search.get("runs", [])]
    grids = [run for run in runs if run.grid and list(run.maps) == keys]
    for run in grids[-rounds:] if rounds else grids:
        for i, record in enumerate(run.trials):
            found[i].append(record)
    for run in runs:
        if run.grid:
            continue
        (params,) = run.maps
        for i, key in enumerate(keys):
            if key.items() <= params.items():
                found[i] += run.trials
    return found


@dataclasses.dataclass(eq=False)
class _ScopeRecord:
    """The fits of one classifier inside one :class:`trial_scope`, and its last model."""

    fits: int = 0
    failures: int = 0
    last_error: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    last: tuple[Any, TrialRun] | None = None


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


class TrialBook:
    """The runs of one TFClassifier (and its copies) not yet given to a model, its open trial
    scopes and its job names. Thread-safe: a validator's trials run in its own thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[TrialRun] = []
        self._scopes: list[_ScopeRecord] = []
        self._rounds: _Rounds | None = None

    def __reduce__(self):
        return (TrialBook, ())  # a deep copy or a pickle of the classifier starts a fresh book

    def write(self, run: TrialRun) -> None:
        """Write down the run of a ``fitMultiple`` call."""
        with self._lock:
            self._runs.append(run)
            del self._runs[:-_RUN_LIMIT]

    def _claim(self, uid: str, leave_out: TrialRun | None = None) -> dict[str, Any] | None:
        """The unclaimed runs as a model's ``history["search"]`` (None when there are none)."""
        runs, self._runs = self._runs, []
        kept = [run.to_json() for run in runs if run is not leave_out]
        return {"estimator": uid, "runs": kept} if kept else None

    def single_fit(self, uid: str, explicit: dict, result: TrainingResult, model: Any) -> bool:
        """Note a single fit's result and model; whether it is a trial of an open scope.

        In a scope, the fit is written down as a single run; outside one, ``model`` (a refit)
        is given the runs written since the last refit.
        """
        run = TrialRun.of(False, [explicit], [result])
        with self._lock:
            in_scope = bool(self._scopes)
            search = None if in_scope else self._claim(uid)
            if in_scope:
                record = self._scopes[-1]
                record.fits += 1
                record.last_error = result["error"]
                if result["error"]:
                    record.failures += 1
                    record.errors.append(result["error"])
                record.last = (model, run)
                self._runs.append(run)
                del self._runs[:-_RUN_LIMIT]
        if search is not None:
            model._keep_search(search)
        return in_scope

    def in_scope(self) -> bool:
        """Whether a :func:`trial_scope` of this classifier is open."""
        with self._lock:
            return bool(self._scopes)

    def job_name(self, uid: str, single: bool) -> str:
        """The name of a training job in progress lines and the Spark UI."""
        with self._lock:
            if self._rounds is None:
                return f"{uid} {'fit' if single else 'fitMultiple'}"
            return "refit of the best setting" if single else self._rounds.next_search()


class KeepsTrials:
    """Mixin of TFClassifier: its :class:`TrialBook`, made with it, shared by its copies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trial_book = TrialBook()


@contextlib.contextmanager
def named_rounds(classifier: Any, folds: int | None) -> Iterator[None]:
    """Name the training jobs of ``classifier`` (and its copies) in progress lines, in the block.

    For a validator's ``fit``: with ``folds`` (a CrossValidator) the k-th ``fitMultiple`` is
    ``fold k of n``, without (a TrainValidationSplit) it is the ``train/validation split``; a
    single fit is the ``refit of the best setting``. Outside such a block they are named by
    the classifier's uid: ``<uid> fitMultiple``, ``<uid> fit``.
    """
    book = classifier._trial_book
    with book._lock:
        book._rounds = _Rounds(folds)
    try:
        yield
    finally:
        with book._lock:
            book._rounds = None


def classifiers_in(stage: Any) -> list[Any]:
    """The TFClassifiers in ``stage``: itself, a (nested) Pipeline's, a validator's."""
    if hasattr(stage, "getEstimator"):
        return classifiers_in(stage.getEstimator())
    if hasattr(stage, "getStages"):
        return [found for inner in stage.getStages() for found in classifiers_in(inner)]
    if isinstance(getattr(stage, "_trial_book", None), TrialBook):
        return [stage]
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
    whenever every trial failed). The refit's model keeps the trials of the block, so that
    :func:`~sparktf.tuning.tuning_report` shows each map's training time and failure. Use one
    scope per search. A bare TFClassifier in a validator needs no scope: ``fitMultiple`` treats
    its maps as trials on its own.
    """
    return TrialScope(estimator)


class TrialScope:
    """The context manager :func:`trial_scope` returns (see there)."""

    def __init__(self, estimator: Any) -> None:
        books: dict[int, tuple[str, TrialBook]] = {}
        for clf in classifiers_in(estimator):
            books.setdefault(id(clf._trial_book), (clf.uid, clf._trial_book))
        if not books:
            raise ValueError(
                "trial_scope expects a TFClassifier, a Pipeline holding one, or a validator "
                f"whose estimator holds one. Got {type(estimator).__name__} instead."
            )
        self.books = sorted(books.values(), key=lambda pair: pair[0])
        self.records: dict[int, tuple[str, _ScopeRecord]] = {}  # by book: uids may repeat

    def __enter__(self) -> TrialScope:
        for uid, book in self.books:
            with book._lock:
                record = _ScopeRecord()
                self.records[id(book)] = (uid, record)
                book._scopes.append(record)
                book._runs.clear()  # a scope is one search: earlier runs are not its trials
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for uid, book in self.books:
            _, record = self.records[id(book)]
            with book._lock:
                if record in book._scopes:
                    book._scopes.remove(record)
                model, run = record.last or (None, None)
                search = book._claim(uid, leave_out=run)
            if model is not None and search is not None and exc_type is None:
                model._keep_search(search)
        if exc_type is not None:
            return
        for uid, record in self.records.values():
            _raise_for(uid, record)


def _raise_for(uid: str, record: _ScopeRecord) -> None:
    """TrainingError when the scope's last fit of classifier ``uid`` failed."""
    if record.last_error is None:
        return
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
