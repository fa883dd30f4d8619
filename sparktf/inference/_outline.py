"""Which tensors of its model a transform feeds and fetches, learned where it is cheapest.

Planning a :class:`~sparktf.transformer.TFGraphTransformer` needs the names, dtypes and shapes
of the model's tensors that its columns map to. :func:`resolve_tensors` matches the stage's
``inputCol``/``inputMapping`` and ``outputCol``/``outputMapping`` against a loaded model, and
:func:`model_tensors` decides where that model is loaded:

* on the driver, when this process has imported TensorFlow already (a notebook that built the
  model, a test): the model is loaded there once and kept in the driver's cache;
* otherwise in one short Spark job with one task per task slot, in the Python workers: each
  loads the model into its own cache, where the transform's tasks then find it. The driver never
  imports TensorFlow, and the workers' import starts at once instead of after the driver's: on
  a fresh session that is the one import (several seconds) and one model load the first
  transform no longer waits for on the driver.

Both give the same answers and the same errors. Answers are kept on the driver per model
identity and mapping, so a second transform of the same model runs no job.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sparktf.inference._plan import ModelSpec
from sparktf.inference._tensors import TensorInfo
from sparktf.inference._worker import model_bytes

__all__ = ["ResolvedTensors", "TensorRequest", "model_tensors", "resolve_tensors"]


@dataclass(frozen=True)
class TensorRequest:
    """What a stage asks of its model: ``inputs`` as (column, tensor) pairs, or empty when
    ``input_col`` feeds the model's only input; ``outputs`` as (tensor, column) pairs, or empty
    when the model's only output goes to ``output_col``. ``stage`` names it in messages."""

    stage: str
    inputs: tuple[tuple[str, str], ...]
    input_col: str | None
    outputs: tuple[tuple[str, str], ...]
    output_col: str


@dataclass(frozen=True)
class ResolvedTensors:
    """The tensors a transform uses: (column, input tensor) and (output tensor, column) pairs."""

    inputs: tuple[tuple[str, TensorInfo], ...]
    outputs: tuple[tuple[TensorInfo, str], ...]


def resolve_tensors(model: Any, request: TensorRequest) -> ResolvedTensors:
    """Match ``request`` against the loaded ``model``; raise ValueError (or
    :class:`~sparktf.errors.UnknownTensorError`) naming the model's tensors when it does not
    fit."""
    name = request.stage
    input_mapping = dict(request.inputs)
    if not input_mapping:
        if request.input_col is None:
            raise ValueError(
                f"{name} needs inputCol (for a model with one input) or inputMapping "
                f"(column -> tensor). {model._listing()}"
            )
        if len(model.inputs) != 1:
            raise ValueError(
                f"The model has {len(model.inputs)} inputs, so {name} needs inputMapping "
                f"(column -> tensor) instead of inputCol. {model._listing()}"
            )
        input_mapping = {request.input_col: model.inputs[0].name}
    output_mapping = dict(request.outputs)
    if not output_mapping:
        if len(model.outputs) != 1:
            raise ValueError(
                f"The model has {len(model.outputs)} outputs, so {name} needs outputMapping "
                f"(tensor -> column) to choose them. {model._listing()}"
            )
        output_mapping = {model.outputs[0].name: request.output_col}
    inputs = tuple((col, model.input(tensor)) for col, tensor in input_mapping.items())
    outputs = tuple((model.output(tensor), col) for tensor, col in output_mapping.items())
    model.check_feeds([i.name for _, i in inputs], [o.name for o, _ in outputs])
    return ResolvedTensors(inputs, outputs)


# -- where the model is loaded -------------------------------------------------------------------

_ANSWERS: OrderedDict[tuple[str, TensorRequest], ResolvedTensors] = OrderedDict()
_ANSWERS_LIMIT = 64
_answers_lock = threading.Lock()


def tensorflow_loaded() -> bool:
    """Whether this process has imported TensorFlow."""
    return "tensorflow" in sys.modules


def model_tensors(
    spark: Any, spec: ModelSpec, data: bytes | None, handle: Any, request: TensorRequest
) -> ResolvedTensors:
    """The tensors ``request`` maps to in the model of ``spec``.

    ``data`` is the model's bytes on the driver (None when each worker reads ``spec.path``) and
    ``handle`` what was shipped to the workers (:func:`sparktf.inference._udf.ship_model`).
    """
    key = (spec.key, request)
    with _answers_lock:
        if key in _ANSWERS:
            _ANSWERS.move_to_end(key)
            return _ANSWERS[key]
    if tensorflow_loaded():
        from sparktf.inference._sources import cached_model

        answer = resolve_tensors(cached_model(spec.source_spec(), lambda: data), request)
    else:
        answer = _on_workers(spark, spec, handle, request)
    with _answers_lock:
        _ANSWERS[key] = answer
        while len(_ANSWERS) > _ANSWERS_LIMIT:
            _ANSWERS.popitem(last=False)
    return answer


def _on_workers(spark: Any, spec: ModelSpec, handle: Any, request: TensorRequest):
    from sparktf._spark import run_on_workers

    source = spec.source_spec()

    def answer() -> tuple[str, Any]:
        from sparktf.inference._sources import cached_model

        try:
            model = cached_model(source, lambda: model_bytes(handle))
            return "ok", resolve_tensors(model, request)
        except Exception as exc:  # sent back, raised again on the driver as the same type
            return "error", (type(exc).__module__, type(exc).__qualname__, str(exc))

    results = run_on_workers(spark, answer, f"sparktf: load the model of {request.stage}")
    status, value = results[0]
    if status == "ok":
        return value
    raise _driver_error(*value)


def _driver_error(module: str, qualname: str, message: str) -> Exception:
    """The error a worker raised, as the same type when it is Python's or sparktf's own (other
    modules are not imported on the driver just to name an error: TensorFlow's among them)."""
    kind = None
    if module == "builtins":
        kind = getattr(builtins, qualname, None)
    elif module == "sparktf" or module.startswith("sparktf."):
        kind = getattr(importlib.import_module(module), qualname, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # an error type that takes other arguments
            pass
    return RuntimeError(f"{module}.{qualname}: {message}")
