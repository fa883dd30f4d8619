"""The Params of TFClassifier that start it from a pretrained network (``baseModel``).

Declared once here as :data:`TRANSFER_DECLARED` and appended to
:data:`sparktf._classifier_params.DECLARED`, so they are Params like any other (grids, validators,
the halving search). The base is read and checked on the driver by
:mod:`sparktf.training._bases`; the network is built in the task by
:mod:`sparktf.training._transfer`.
"""

from __future__ import annotations

from typing import Any

from pyspark.ml.param import TypeConverters

from sparktf.param.declare import Declared, FloatRange, IntRange

__all__ = ["TRANSFER_DECLARED"]


def _base_model_check(stage: Any, name: str) -> str:
    """The declared check of ``baseModel``: what cannot go with a pretrained base."""
    path = stage.getOrDefault(name)
    if not path:
        return ""
    stage_name = type(stage).__name__
    for other, empty in (("convLayers", []), ("kerasModel", "")):
        value = stage.getOrDefault(other)
        if value not in (empty, None):
            shown = list(value) if isinstance(value, list) else f"<{len(value)} chars of JSON>"
            raise ValueError(
                f"The 'baseModel' param of {stage_name} replaces the built-in network's body: it "
                f"cannot be combined with '{other}', which must be empty when baseModel is set. "
                f"Got baseModel={path!r} and {other}={shown} instead."
            )
    return path


#: The pretrained-base Params of TFClassifier, in the order of their keywords.
TRANSFER_DECLARED = (
    Declared(
        "baseModel",
        "path or URI (any filesystem Spark reads) of a .keras file holding a pretrained network "
        "to start from, weights kept: cut at featureLayer, followed by hiddenLayers/dropout and "
        "K logits. Read once on the driver. Not with convLayers or kerasModel. "
        "Empty: no base",
        TypeConverters.toString,
        "",
        _base_model_check,
        "str",
    ),
    Declared(
        "featureLayer",
        "name of the baseModel layer whose output is the features (rank-4 outputs are averaged "
        "over height and width); empty: the base without its classifier head (trailing "
        "Activation/Softmax layers and the last Dense dropped; a base ending otherwise is used "
        "whole)",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "trainableLayers",
        "how many of the base's top layers train, counted down from featureLayer among the "
        "layers with weights other than BatchNormalization (which never trains); 0: the base "
        "is frozen, -1: all of it (int >= -1). With fineTuneEpochs > 0 they train only in the "
        "second phase",
        TypeConverters.toInt,
        0,
        IntRange(-1),
        "int",
    ),
    Declared(
        "fineTuneEpochs",
        "with baseModel: epochs of a second phase after `epochs` epochs of the head alone (base "
        "frozen), in which the top trainableLayers of the base train too, at "
        "fineTuneLearningRate with a new optimizer (int >= 0; 0: one phase)",
        TypeConverters.toInt,
        0,
        IntRange(0),
        "int",
    ),
    Declared(
        "fineTuneLearningRate",
        "learning rate of the fine-tuning phase (fineTuneEpochs) (float > 0)",
        TypeConverters.toFloat,
        1e-5,
        FloatRange(0.0, None, "neither"),
        "float",
    ),
)
