"""A pretrained base in a training task: cut at its feature layer, frozen or partly trainable.

:func:`base_body` is the body :func:`sparktf.training._networks.build_model` uses when a spec has
a ``baseModel``: the base (its ``.keras`` bytes, read on the driver and shipped with the
training data) cut at ``featureLayer`` as a nested model named :data:`BASE_NAME`, global
average pooling for rank-4 features, then the built-in family's dense head. Its weights are
the pretrained ones. :func:`freeze` sets which of its layers train and :func:`phase_two`
switches a model to the fine-tuning phase. TensorFlow is imported only inside functions.

Which layers train: the base's layers with weights, other than BatchNormalization, counted
from the cut downwards; ``trainableLayers=n`` lets the top ``n`` train (-1: all). The base's
BatchNormalization layers never train: Keras 3 passes the outer model's ``training`` flag into
a nested model whatever its call said, and a BatchNormalization layer that is not trainable
runs in inference mode (its moving statistics stay the pretrained ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparktf.training._plans import TrainingSpec

__all__ = ["BASE_NAME", "base_body", "feature_tensor", "freeze", "phase_two"]

#: The name of the nested model holding the cut base in a trained network.
BASE_NAME = "pretrained_base"

# The layers of a classifier head that the default cut drops from the end of a base.
_ACTIVATIONS = ("Activation", "Softmax")
_LAYERS_SHOWN = 20


def _producer(tensor: Any) -> tuple[Any, Any]:
    """The layer that made ``tensor`` and that layer's (single) input tensor, if any."""
    layer, node_index, _ = tensor._keras_history
    inputs = layer._inbound_nodes[node_index].input_tensors
    return layer, (inputs[0] if len(inputs) == 1 else None)


def feature_tensor(base: Any, feature_layer: str) -> Any:
    """The tensor of ``base`` the features are read from: ``feature_layer``'s output, or by
    default the base's output without its classifier head (trailing Activation/Softmax layers,
    then one Dense); a base ending in anything else is used whole."""
    if feature_layer:
        layer = next((x for x in base.layers if x.name == feature_layer), None)
        if layer is None:
            names = [x.name for x in base.layers]
            listed = ", ".join(f"'{n}'" for n in names[-_LAYERS_SHOWN:])
            raise ValueError(
                f"The 'featureLayer' param of TFClassifier must name a layer of baseModel. Got "
                f"{feature_layer!r}; the base's last layers are: {listed}."
            )
        return layer.output
    tensor = base.outputs[0]
    layer, below = _producer(tensor)
    while type(layer).__name__ in _ACTIVATIONS and below is not None:
        tensor = below
        layer, below = _producer(tensor)
    if type(layer).__name__ == "Dense" and below is not None:
        tensor = below
    return tensor


def _walk(layer: Any) -> list[Any]:
    """``layer`` and every layer nested in it."""
    found = [layer]
    for inner in getattr(layer, "layers", None) or ():
        found += _walk(inner)
    return found


def freeze(cut: Any, trainable: int) -> None:
    """Let the top ``trainable`` layers with weights of ``cut`` train (-1: all; 0: none);
    BatchNormalization layers never train (see the module's notes)."""
    weighted = [x for x in cut.layers if x.weights and type(x).__name__ != "BatchNormalization"]
    top = weighted if trainable < 0 else weighted[len(weighted) - trainable :] if trainable else []
    chosen = {id(x) for x in top}
    for layer in cut.layers:
        layer.trainable = id(layer) in chosen
    for layer in _walk(cut):
        if type(layer).__name__ == "BatchNormalization":
            layer.trainable = False


def base_body(
    keras: Any, spec: TrainingSpec, x: Any, num_classes: int, base_bytes: bytes, head: Callable
) -> Any:
    """The network's body and head on the (standardized, reshaped) features ``x``: the cut base
    (trainable layers as the first phase has them), pooling, then ``head`` (the built-in
    family's dense layers and K logits, the logits starting at zero)."""
    from sparktf._loading import load_keras_bytes

    base = load_keras_bytes(base_bytes)
    cut = keras.Model(base.inputs, feature_tensor(base, spec.feature_layer), name=BASE_NAME)
    expected = tuple(cut.inputs[0].shape[1:])
    if len(cut.inputs) != 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"The 'baseModel' of TFClassifier must take one input of the features' shape. Got "
            f"features of shape {tuple(x.shape[1:])} and a base with inputs "
            f"{[tuple(t.shape[1:]) for t in cut.inputs]}."
        )
    freeze(cut, 0 if spec.fine_tune_epochs else spec.trainable_layers)
    y = cut(x, training=False)
    if len(y.shape) == 4:
        y = keras.layers.GlobalAveragePooling2D(name="base_pool")(y)
    # The new head's logits start at zero (as BiT's fine-tuning recipe does): a pretrained
    # base's features are large (ReLU outputs that fed its own classifier), so random logit
    # weights on them gave losses near 10 that a small learning rate took many epochs to undo.
    return head(keras, spec, y, num_classes, logits_init="zeros")


def phase_two(model: Any, spec: TrainingSpec) -> None:
    """Unfreeze the top ``trainableLayers`` of a model's base for fine-tuning (recompile
    after)."""
    freeze(model.get_layer(BASE_NAME), spec.trainable_layers)
