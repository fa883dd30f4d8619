"""What ``sparktf label`` shows as each label's score: the model's output, or its softmax when
that output is logits (``--model-output``).

A network sparktf trains ends in K logits (``rawPrediction``), and its ``.keras`` file
(``best_model.keras`` of ``sparktf tune``, ``TFClassificationModel.modelBytes``) keeps them: read
as scores, logits look like confidences but are not (they can be negative, above 1, and do not
sum to 1). ``auto`` recognizes such a file without TensorFlow, from the ``config.json`` inside
it: the network is named :data:`NETWORK_NAME` (the name sparktf gives every network it builds)
and its output is not a softmax. Softmax keeps the order of the scores, so the top-K labels are
the same either way; only their scores change.

Importing this module imports neither TensorFlow nor Spark.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

from sparktf.training._networks import NETWORK_NAME, PASS_THROUGH

__all__ = ["MODEL_OUTPUTS", "NETWORK_NAME", "applies_softmax", "sparktf_logits", "with_softmax"]

#: The values of ``--model-output``: what the model's output is.
MODEL_OUTPUTS = ("auto", "logits", "probabilities")


def _output_names(config: dict[str, Any]) -> list[str]:
    """The names of the layers giving a model config's outputs (its last layer for a
    Sequential)."""
    if "output_layers" not in config:
        layers = config.get("layers") or []
        return [layers[-1]["config"].get("name")] if layers else []
    outputs = config["output_layers"]
    if outputs and not isinstance(outputs[0], list):  # one output: [name, node, tensor]
        outputs = [outputs]
    return [entry[0] for entry in outputs]


def _softmax(config: dict[str, Any], name: str | None, depth: int = 0) -> bool:
    """Whether the layer ``name`` of a model config gives a softmax: a Softmax layer, a layer
    whose activation is softmax, a nested model whose output is one, or a layer passing such an
    output through."""
    layers = {layer["config"].get("name"): layer for layer in config.get("layers") or []}
    layer = layers.get(name)
    if layer is None or depth > 100:
        return False
    kind, inner = layer.get("class_name"), layer.get("config") or {}
    if kind == "Softmax" or inner.get("activation") == "softmax":
        return True
    if "layers" in inner:  # a nested model
        return any(_softmax(inner, n, depth + 1) for n in _output_names(inner))
    if kind in PASS_THROUGH:
        inbound = _inbound_name(layer, config, layers)
        return inbound is not None and _softmax(config, inbound, depth + 1)
    return False


def _inbound_name(layer: dict[str, Any], config: dict[str, Any], layers: dict) -> str | None:
    """The layer feeding ``layer``: in a functional config, the first inbound node's; in a
    Sequential, the one before it."""
    if "output_layers" not in config:
        names = list(layers)
        index = names.index(layer["config"].get("name"))
        return names[index - 1] if index > 0 else None
    nodes = layer.get("inbound_nodes") or []
    try:
        return nodes[0]["args"][0]["config"]["keras_history"][0]
    except (KeyError, IndexError, TypeError):
        return None


def sparktf_logits(keras_file: bytes) -> bool:
    """Whether the bytes of a ``.keras`` file hold a network sparktf built whose output is
    logits (not a softmax); False for anything else, including a file that is not a ``.keras``
    archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(keras_file)) as archive:
            model = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return False
    config = model.get("config") or {}
    if config.get("name") != NETWORK_NAME:
        return False
    names = _output_names(config)
    return len(names) == 1 and not _softmax(config, names[0])


def _keras_path(path: str, model_format: str) -> bool:
    if model_format == "keras":
        return True
    return model_format == "auto" and path.rstrip("/").lower().endswith(".keras")


def applies_softmax(spark: Any, path: str, model_format: str, model_output: str) -> bool:
    """Whether ``sparktf label`` turns the model's output into probabilities: always with
    ``logits``, never with ``probabilities``, and with ``auto`` for a ``.keras`` file of a
    network sparktf built that outputs logits (read through Spark unless it is local)."""
    if model_output != "auto":
        return model_output == "logits"
    if not _keras_path(path, model_format):
        return False
    local = path[len("file://") :] if path.startswith("file://") else path
    if "://" not in local:
        if not os.path.isfile(local):
            return False
        with open(local, "rb") as handle:
            return sparktf_logits(handle.read())
    from sparktf._spark import read_bytes

    return sparktf_logits(read_bytes(spark, path))


def with_softmax(frame: Any, scores: str = "scores", top_k: str = "topK") -> Any:
    """``frame`` with the array column ``scores`` replaced by its softmax and the score of each
    entry of ``top_k`` (structs of label and score) by the same probability; the order and
    the labels are unchanged."""
    from pyspark.sql import functions as F

    peak = F.array_max(scores)
    total = F.aggregate(scores, F.lit(0.0), lambda acc, s: acc + F.exp(s - peak))

    def prob(s: Any) -> Any:
        return (F.exp(s - peak) / total).cast("float")

    return frame.withColumn(
        top_k, F.transform(top_k, lambda e: e.withField("score", prob(e["score"])))
    ).withColumn(scores, F.transform(scores, prob))
