"""The driver side of ``TFClassifier.fit``/``fitMultiple``: trials, their labels and failures.

:class:`TrialIterator` is what ``fitMultiple`` returns: the thread-safe iterator pyspark's
validators consume, which trains every param map as one Spark job on first use
(:func:`sparktf._distributed.run_trainings`) and then hands out the models. The estimator is
passed in, so this module never imports the stage module.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

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
    """Thread-safe iterator of fitMultiple results; the Spark job runs once, on first use."""

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

    def _run(self) -> None:
        from sparktf._distributed import record_trials, run_trainings

        labels = [param_label(pm) for pm in self.param_maps]
        with self.est._training_data(self.dataset) as data:
            results = run_trainings(
                self.dataset.sparkSession,
                data,
                self.specs,
                labels=labels,
                name=f"{self.est.uid} fitMultiple",
                strict=any(est.getFailOnTrialError() for est in self.estimators),
            )
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
        self.results = [
            est._model_from_result(res, data, pm)
            for est, res, pm in zip(self.estimators, results, self.param_maps, strict=True)
        ]

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
