"""Keras models in the engine: called through one ``tf.function``, outputs addressed by name.

A :class:`KerasModel` offers the model's inputs and outputs (named by their layers) and, as
further outputs, the output of any layer of the model addressed by the layer's name: the
runner then calls the model cut at those layers (``keras.Model(model.inputs, layer.output)``),
which makes a featurizer of a classifier (e.g. its pooling layer's output as an ml Vector).
TensorFlow is imported only inside functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sparktf.errors import ModelSourceError
from sparktf.inference._tensors import LoadedModel, Runner, TensorInfo, first_line, tensor_info
from sparktf.inference._tensors import tf as _tf

__all__ = ["KerasModel"]

#: How many layer names an unknown output's message lists (the last ones: nearest the output).
_LAYERS_SHOWN = 20


class KerasModel(LoadedModel):
    """A Keras model, called through one ``tf.function`` with a dynamic batch dimension."""

    format = "keras"

    def __init__(self, model: Any) -> None:
        self.model = model
        model_inputs = list(model.inputs or [])
        if not model_inputs:
            raise ModelSourceError("the Keras model has no defined inputs (build it first)")
        model_outputs = list(model.outputs or [])
        names = list(getattr(model, "output_names", None) or [])
        if len(names) != len(model_outputs) or len(set(names)) != len(names):
            names = [_keras_name(t) for t in model_outputs]
        tf = _tf()
        inputs = [
            tensor_info(_keras_name(t), t.dtype, tf.TensorShape(t.shape), [t.name, f"input_{i}"])
            for i, t in enumerate(model_inputs)
        ]
        outputs = [
            tensor_info(name, t.dtype, tf.TensorShape(t.shape), [t.name, f"output_{i}"])
            for i, (name, t) in enumerate(zip(names, model_outputs, strict=True))
        ]
        super().__init__(inputs, outputs)

    def _extra_tensor(self, name: str, kind: str) -> TensorInfo | None:
        # Any layer's output may be fetched by the layer's name: the model cut there.
        tensor = self._layer_tensor(name) if kind == "output" else None
        if tensor is None:
            return None
        return tensor_info(name, tensor.dtype, _tf().TensorShape(tensor.shape))

    def _layer_tensor(self, name: str) -> Any:
        """The output of the layer ``name`` (``"name:i"``: its output ``i``), or None when the
        model has no such layer; ValueError for a layer used more than once in the model."""
        base, index = name, 0
        head, _, tail = name.rpartition(":")
        if head and tail.isdigit():
            base, index = head, int(tail)
        layer = next((x for x in self.model.layers if x.name == base), None)
        if layer is None:
            return None
        calls = len(getattr(layer, "_inbound_nodes", None) or ())
        try:
            output = layer.output if calls <= 1 else None
        except (AttributeError, ValueError):
            output = None
        if output is None:
            raise ValueError(
                f"The keras model's layer '{base}' has no single output to fetch: the model "
                f"calls it {calls} times. Name a layer that the model calls once."
            )
        outputs = list(output) if isinstance(output, (list, tuple)) else [output]
        return outputs[index] if index < len(outputs) else None

    def _more_names(self, kind: str) -> str:
        if kind != "output":
            return ""
        layers = [x.name for x in self.model.layers]
        shown = layers[-_LAYERS_SHOWN:]
        which = f"the last {len(shown)} of its {len(layers)}" if len(shown) < len(layers) else "its"
        listed = ", ".join(f"'{n}'" for n in shown)
        return (
            f" Nor has it a layer of that name (a layer's output is fetched by the layer's "
            f"name); {which} layers: {listed}."
        )

    def _make_runner(
        self, inputs: tuple[str, ...], outputs: tuple[str, ...], freeze: bool = False
    ) -> Runner:
        tf = _tf()
        order = [t.name for t in self.inputs]
        names = [t.name for t in self.outputs]
        specs = [
            tf.TensorSpec([None, *(t.shape or ())[1:]], tf.as_dtype(t.dtype)) for t in self.inputs
        ]
        model = self.model
        if any(n not in names for n in outputs):  # inner layers: the model cut at them
            import keras

            ends = [
                model.outputs[names.index(n)] if n in names else self._layer_tensor(n)
                for n in outputs
            ]
            model, names = keras.Model(model.inputs, ends), list(outputs)
        single = len(order) == 1

        @tf.function(input_signature=specs)
        def call(*xs):
            result = model(xs[0] if single else list(xs), training=False)
            if isinstance(result, dict):
                return [result[n] for n in names]
            return list(result) if isinstance(result, (list, tuple)) else [result]

        picks = [names.index(n) for n in outputs]
        position = {n: i for i, n in enumerate(inputs)}
        function = _frozen(call, len(specs)) if freeze else call

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            result = function(*[tf.constant(arrays[position[n]]) for n in order])
            result = tf.nest.flatten(result)
            return [np.asarray(result[i]) for i in picks]

        return run


def _frozen(function: Any, inputs: int) -> Any:
    """``function`` (a ``tf.function`` with a signature of ``inputs`` tensors) with its variables
    folded into constants; ``function`` itself when that fails (e.g. a model holding lookup
    tables, whose handles would be left as extra inputs of the frozen graph)."""
    import logging

    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        if len(frozen.inputs) != inputs:
            extra = [t.name for t in frozen.inputs[inputs:]]
            raise ValueError(f"resources that cannot be folded into constants: {extra}")
        return frozen
    except Exception as exc:  # the unfrozen function still gives the same results
        logging.getLogger("sparktf").warning(
            "sparktf runs the Keras model unfrozen: freezing it failed (%s)", first_line(exc)
        )
        return function


def _keras_name(tensor: Any) -> str:
    """A name of a Keras symbolic tensor that survives saving and loading: its layer's name
    (``":i"`` added for output ``i > 0`` of a layer). Tensor names like ``keras_tensor_7`` are
    counters of the process that built the model, so they differ between driver and workers."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return tensor.name
    operation, _, index = history
    return operation.name if not index else f"{operation.name}:{index}"
