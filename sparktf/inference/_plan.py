"""The plan of a transform: what the driver decides and every worker follows.

:mod:`sparktf.inference._driver` builds a :class:`TransformPlan` on the driver (the model's
:class:`ModelSpec`, one :class:`InputPlan` per input column, one :class:`OutputPlan` per output
column, the top-K labels, a classifier's :class:`ScoresPlan`); it is pickled into the UDF and
executed by :mod:`sparktf.inference._worker`. Plain frozen data: nothing here imports Spark or
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "CHANNEL_ORDERS",
    "HANDLE_INVALID",
    "MODEL_FORMATS",
    "OUTPUT_TYPES",
    "VALID",
    "InputPlan",
    "ModelSpec",
    "OutputPlan",
    "PathSource",
    "ScoresPlan",
    "TopKPlan",
    "TransformPlan",
    "quote",
    "shape_text",
]

#: Values of the ``modelFormat`` Param.
MODEL_FORMATS = ("auto", "graphdef", "savedmodel", "keras")
#: Values of the ``outputTypes`` Param (per output column).
OUTPUT_TYPES = ("auto", "array", "double", "vector")
#: Values of the ``channelOrder`` Param.
CHANNEL_ORDERS = ("rgb", "bgr")
#: Values of the ``handleInvalid`` Param.
HANDLE_INVALID = ("error", "skip", "keep")
#: Name of the per-row validity flag in the struct the UDF returns.
VALID = "__valid"


@dataclass(frozen=True)
class ModelSpec:
    """The model a worker loads: its format, its identity ``key`` (of its bytes, or of the files
    at ``path``), the ``path`` workers read when no bytes are shipped, the SavedModel
    ``signature``, the ``name`` used in messages (the path the driver read), and whether the
    driver opted in to ``unsafe`` loading (models holding Python code, see
    :func:`sparktf._loading.unsafe_loading_allowed`)."""

    format: str
    key: str
    path: str | None
    signature: str
    name: str | None = None
    unsafe: bool = False

    def source_spec(self) -> dict[str, Any]:
        """The spec as :func:`sparktf.inference._sources.load_model` and ``cached_model``
        take it."""
        return asdict(self)


@dataclass(frozen=True)
class InputPlan:
    """How one input column feeds one input tensor.

    ``kind`` is ``numeric`` (numbers, arrays or ml Vectors reshaped to ``shape``, at most one
    size None), ``raw`` (bytes or strings for a string tensor of ``shape``), ``image_bytes``,
    ``image_path`` (the file a path names, read by the worker) or ``image_struct`` (decoded or
    read, resized to ``size`` = (height, width), ``channels`` 1 or 3, scaled by ``scaling`` in
    ``order``; ``squeeze`` drops the channel axis; ``scaled`` decodes JPEG bytes at a reduced
    scale first, see :func:`sparktf.image.decode_image`).
    ``vector``: the column holds ml Vectors; ``cast``: the Spark type the column is cast to on
    the JVM before it travels to Python (e.g. ``array<float>``: half the bytes of doubles).
    """

    column: str
    tensor: str
    dtype: str
    kind: str
    shape: tuple[int | None, ...] = ()
    vector: bool = False
    size: tuple[int, int] | None = None
    channels: int = 0
    squeeze: bool = False
    scaling: str = ""
    order: str = ""
    scaled: bool = False
    cast: str | None = None


@dataclass(frozen=True)
class OutputPlan:
    """One output tensor written as ``column`` of ``kind`` (``double``, ``long``, ``boolean``,
    ``string``, ``array``, ``vector``, ``array_long``, ``array_boolean`` or ``array_string``);
    ``shape`` is one row's static shape, None when unknown."""

    column: str
    tensor: str
    kind: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class TopKPlan:
    """The ``k`` best ``labels`` of output number ``index`` (column ``column``) for each row."""

    index: int
    labels: tuple[str, ...]
    k: int
    column: str


@dataclass(frozen=True)
class PathSource:
    """Where each row's source path is read for error messages: a string column, or the
    ``field`` of a struct column."""

    column: str
    field: str | None = None


@dataclass(frozen=True)
class ScoresPlan:
    """A classifier's head: the model's one output (logits, or probabilities when ``logits`` is
    false) becomes the ``fields`` asked for, in order: ``raw`` scores, ``probability`` and the
    ``prediction`` (with ``thresholds``, see
    :func:`sparktf.inference._scoring.apply_thresholds`)."""

    logits: bool
    fields: tuple[str, ...]
    thresholds: tuple[float, ...] | None = None

    def apply(self, out: np.ndarray) -> list[np.ndarray]:
        from sparktf.inference._scoring import apply_thresholds, raw_and_probability

        raw, prob = raw_and_probability(np.asarray(out, dtype=np.float64), self.logits)
        thresholds = list(self.thresholds) if self.thresholds is not None else None
        found = {"raw": raw, "probability": prob}
        if "prediction" in self.fields:
            found["prediction"] = apply_thresholds(prob, thresholds)
        return [found[field] for field in self.fields]


@dataclass(frozen=True)
class TransformPlan:
    """Everything the UDF needs, checked on the driver. ``stage`` is the stage's class name (for
    messages); ``row_mode`` runs the model once per row (scalar inputs); ``freeze`` runs a Keras
    model as a frozen graph; ``scores`` turns the model's output into a classifier's columns
    (one per output plan); ``invalid_hint`` ends the message of a row that cannot be fed."""

    stage: str
    model: ModelSpec
    inputs: tuple[InputPlan, ...]
    outputs: tuple[OutputPlan, ...]
    top_k: TopKPlan | None
    row_mode: bool
    batch_size: int
    handle_invalid: str
    path: PathSource | None
    freeze: bool = False
    scores: ScoresPlan | None = None
    invalid_hint: str = (
        "Set handleInvalid='skip' to drop such rows or 'keep' to give them null outputs."
    )


def quote(name: str) -> str:
    """A column name quoted for ``F.col`` (dots and backticks taken literally)."""
    return "`" + name.replace("`", "``") + "`"


def shape_text(shape: Sequence[int | None]) -> str:
    """A shape for messages, unknown sizes as ``?``: ``[?, 3]``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
