"""The driver side of ``TFClassifier.fit``/``fitMultiple``: trials, their labels and failures.

:class:`TrialIterator` is what ``fitMultiple`` returns: the thread-safe iterator pyspark's
validators consume. On first use it trains every param map: the maps are grouped by their data
setting (which columns they read, and how), the data of each setting is collected (or staged)
once, and each setting's maps train as one Spark job (:func:`sparktf._distributed.run_trainings`).
A grid that does not tune the data Params is one setting, so one job. The estimator is passed
in, so this module never imports the stage module.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from sparktf._data import training_data
from sparktf._loading import model_key
from sparktf.errors import TrainingError

__all__ = ["TrialIterator", "inside_validator", "param_label"]

logger = logging.getLogger("sparktf")


def inside_validator() -> bool:
    """Whether this fit was called (through any Pipeline) by a pyspark.ml tuning validator.

    CrossValidator/TrainValidationSplit train a Pipeline holding a TFClassifier through
    ``Pipeline.fit``, one param map at a time, so a failed trial reaches ``_fit`` rather than
    ``fitMultiple``. There, as in ``fitMultiple``, a failed trial must not sink the search.
    """
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename.replace("\\", "/")
        if filename.endswith("pyspark/ml/tuning.py"):
            return True
        frame = frame.f_back
    return False


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

        The setting is every field of the map's DataSpec but the seed: maps that read the same
        columns the same way share one collect (or staging) and one job, whatever their seeds.
        """
        groups: dict[Any, list[int]] = {}
        for index, est in enumerate(self.estimators):
            key = dataclasses.replace(est._data_spec(), seed=0)
            groups.setdefault(key, []).append(index)
        return list(groups.values())

    def _run(self) -> None:
        from sparktf._distributed import record_trials, run_trainings

        labels = [param_label(pm) for pm in self.param_maps]
        groups = self._groups()
        strict = any(est.getFailOnTrialError() for est in self.estimators)
        results: list[Any] = [None] * len(self.param_maps)
        models: list[Any] = [None] * len(self.param_maps)
        for number, indices in enumerate(groups, start=1):
            first = self.estimators[indices[0]]
            name = f"{self.est.uid} fitMultiple"
            if len(groups) > 1:
                name += f" (data setting {number}/{len(groups)})"
            with training_data(first._data_spec(), self.dataset) as data:
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
