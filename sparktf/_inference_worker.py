"""What runs inside the pandas UDF of :class:`~sparktf.transformer.TFGraphTransformer`.

The driver (:mod:`sparktf._inference`) plans a transform and ships the model; each Python worker
then runs :func:`predict_batches` on its Arrow batches: it loads the model once (a small cache
keyed by the model's identity), converts each batch's columns to arrays of the input tensors'
shapes and dtypes (numbers, arrays, ml Vectors, encoded images, Spark image structs, bytes or
strings), runs the model ``batchSize`` rows at a time and builds one column per output, the
top-K ``(label, score)`` pairs and a validity flag per row. Rows that cannot be fed (nulls,
undecodable images, data a graph rejects) fail the task or are marked invalid, as
``handleInvalid`` says.

Nothing here touches the driver's Spark objects or imports the stage; TensorFlow is imported
only inside functions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sparktf.image import (
    IMAGE_FIELDS,
    OPENCV_MODES,
    decode_image,
    prepare_pixels,
    spark_image_to_array,
    top_k,
)

__all__ = [
    "VALID",
    "InputPlan",
    "ModelSpec",
    "OutputPlan",
    "PathSource",
    "ScoresPlan",
    "TopKPlan",
    "TransformPlan",
    "model_bytes",
    "predict_batches",
    "shape_text",
]

#: Name of the per-row validity flag in the struct the UDF returns.
VALID = "__valid"
_IMAGE_DIMS = list(IMAGE_FIELDS[1:5])  # height, width, nChannels, mode


# -- the plan: built on the driver by sparktf._inference, pickled into the UDF ---------------


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
        """The spec as :func:`sparktf._sources.load_model` and ``cached_model`` take it."""
        return asdict(self)


@dataclass(frozen=True)
class InputPlan:
    """How one input column feeds one input tensor.

    ``kind`` is ``numeric`` (numbers, arrays or ml Vectors reshaped to ``shape``, at most one
    size None), ``raw`` (bytes or strings for a string tensor of ``shape``), ``image_bytes`` or
    ``image_struct`` (decoded or read, resized to ``size`` = (height, width), ``channels`` 1 or
    3, scaled by ``scaling`` in ``order``; ``squeeze`` drops the channel axis; ``scaled``
    decodes JPEG bytes at a reduced scale first, see :func:`sparktf.image.decode_image`).
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
    ``prediction`` (with ``thresholds``, see :func:`sparktf._scoring.apply_thresholds`)."""

    logits: bool
    fields: tuple[str, ...]
    thresholds: tuple[float, ...] | None = None

    def apply(self, out: np.ndarray) -> list[np.ndarray]:
        from sparktf._scoring import apply_thresholds, raw_and_probability

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


# -- what the UDF runs -----------------------------------------------------------------------


def model_bytes(handle: Any) -> bytes | None:
    """The model's bytes from the handle the driver shipped (:func:`sparktf._inference.ship_model`),
    or None when nothing was shipped and the model is read from its path."""
    return None if handle is None else handle.value


def predict_batches(
    plan: TransformPlan, handle: Any, batches: Iterator[tuple[pd.Series, ...]]
) -> Iterator[pd.DataFrame]:
    """The body of the UDF: each batch is the input columns followed by the path column."""
    from sparktf._sources import cached_model

    model = cached_model(plan.model.source_spec(), lambda: model_bytes(handle))
    runner = model.runner(
        [i.tensor for i in plan.inputs], [o.tensor for o in plan.outputs], freeze=plan.freeze
    )
    for columns in batches:
        yield _predict_frame(runner, columns[:-1], columns[-1], plan)


class _Invalid(Exception):
    """A row whose value cannot be fed (null, undecodable image)."""


def _numpy_dtype(name: str) -> Any:
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow().as_dtype(name).as_numpy_dtype


def _shape_error(plan: TransformPlan, item: InputPlan, got: Any) -> ValueError:
    shape = item.shape
    size = int(np.prod([d for d in shape if d is not None])) if shape else 1
    return ValueError(
        f"{plan.stage}: shape mismatch for column '{item.column}' feeding tensor "
        f"'{item.tensor}': expected rows of shape {shape_text(shape)} ({size} values), got "
        f"{got}."
    )


def _row_value(plan: TransformPlan, item: InputPlan, value: Any, dtype: Any) -> np.ndarray:
    """One row of an input column as an array of the tensor's per-row shape."""
    kind = item.kind
    if value is None or (kind == "image_struct" and _struct_is_null(value)):
        raise _Invalid("the value is null")
    if kind in ("image_bytes", "image_struct"):
        size = (item.size[0], item.size[1])
        try:
            if kind == "image_bytes":
                pixels = decode_image(value, size, item.channels, item.scaled)
            else:
                pixels = spark_image_to_array(value, size, item.channels)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        prepared = prepare_pixels(pixels, item.scaling, item.order, dtype)
        return prepared[:, :, 0] if item.squeeze else prepared
    if kind == "raw":
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return np.array(data, dtype=object).reshape(item.shape)
    array = np.asarray(value, dtype=dtype)
    shape = item.shape
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    if None in shape:
        if known == 0 or array.size % known:
            raise _shape_error(plan, item, f"a row of {array.size} values")
        shape = [array.size // known if d is None else d for d in shape]
    elif array.size != known:
        raise _shape_error(plan, item, f"a row of {array.size} values")
    return array.reshape(shape)


def _row_values(
    plan: TransformPlan, item: InputPlan, values: list[Any], dtype: Any
) -> list[np.ndarray | _Invalid]:
    """:func:`_row_value` of each value, or the :class:`_Invalid` it raised. Encoded images are
    decoded by a small thread pool: Pillow releases the GIL while it decodes and resizes, so a
    task's images decode on every core the task has."""

    def one(value: Any) -> np.ndarray | _Invalid:
        try:
            return _row_value(plan, item, value, dtype)
        except _Invalid as exc:
            return exc

    pool = _decode_pool() if item.kind == "image_bytes" and len(values) > 1 else None
    return list(pool.map(one, values)) if pool else [one(v) for v in values]


_POOL_LOCK = threading.Lock()
_POOL: list[Any] = []


def _decode_pool() -> Any:
    """The Python worker's image decoding threads (``SPARKTF_DECODE_THREADS``, default the
    number of cores up to 4), or None for decoding in the task's own thread (1 or 0)."""
    with _POOL_LOCK:
        if not _POOL:
            from concurrent.futures import ThreadPoolExecutor

            default = min(4, os.cpu_count() or 1)
            try:
                threads = int(os.environ.get("SPARKTF_DECODE_THREADS", default))
            except ValueError:
                threads = default
            pool = ThreadPoolExecutor(threads, "sparktf-decode") if threads > 1 else None
            _POOL.append(pool)
        return _POOL[0]


def _numeric_block(item: InputPlan, values: list[Any], dtype: Any) -> np.ndarray | None:
    """A chunk of a numeric column as one array ``(rows, *shape)``, or None when a row needs a
    closer look (a null, or a size that does not fit the shape)."""
    n = len(values)
    if not n or any(v is None for v in values):
        return None
    try:
        first = values[0]
        block = np.asarray(np.stack(values) if isinstance(first, np.ndarray) else values, dtype)
    except (ValueError, TypeError):
        return None
    shape = item.shape
    known = int(np.prod([d for d in shape if d is not None])) if shape else 1
    per_row = block.size // n
    if None in shape:
        if known == 0 or per_row % known:
            return None
    elif per_row != known or block.size != n * known:
        return None
    return block.reshape([n, *(-1 if d is None else d for d in shape)])


# What _image_struct_parts splits a batch of image structs into: missing rows, sizes, bytes.
_StructParts = tuple[np.ndarray, np.ndarray, list[Any]]


def _image_struct_parts(frame: pd.DataFrame) -> _StructParts | None:
    """Split a batch of Spark image structs once: which rows lack a field (a null struct or
    field), their sizes ``(rows, 4)`` (height, width, nChannels, mode; NaN where missing) and
    their pixel bytes. None when the frame does not have the image struct's fields."""
    try:
        data = frame["data"]
        sizes = frame[_IMAGE_DIMS].to_numpy(dtype=np.float64)
        missing = data.isna().to_numpy() | np.isnan(sizes).any(axis=1)
        return missing, sizes, data.tolist()
    except (KeyError, TypeError, ValueError):
        return None


def _image_struct_block(
    item: InputPlan, parts: _StructParts | None, start: int, stop: int, dtype: Any
) -> np.ndarray | None:
    """Rows ``start:stop`` of a batch of Spark image structs (split by :func:`_image_struct_parts`)
    as one prepared array ``(rows, height, width[, channels])``, or None when a row needs the
    per-row path: a null, another size (resizing), another mode, or a conversion between colour
    and grayscale. The result equals the per-row path's."""
    if parts is None or stop <= start or parts[0][start:stop].any():
        return None
    dims, data = parts[1][start:stop].astype(np.int64), parts[2][start:stop]
    first = dims[0]
    height, width = item.size
    if not (dims == first).all() or (first[0], first[1]) != (height, width):
        return None
    n_channels, mode = int(first[2]), int(first[3])
    if OPENCV_MODES.get(mode) != n_channels or (n_channels == 1) != (item.channels == 1):
        return None
    size = height * width * n_channels
    if any(len(d) != size for d in data):
        return None
    pixels = np.frombuffer(b"".join(data), dtype=np.uint8).reshape(len(data), height, width, -1)
    if n_channels > 1:
        pixels = pixels[..., 2::-1]  # BGR(A) -> RGB
    prepared = prepare_pixels(pixels, item.scaling, item.order, dtype)
    return prepared[..., 0] if item.squeeze else prepared


def _struct_is_null(value: Any) -> bool:
    try:
        return all(v is None or (isinstance(v, float) and np.isnan(v)) for v in value.values())
    except AttributeError:
        return False


def _column_values(column: Any) -> list[Any]:
    if isinstance(column, pd.DataFrame):  # a struct column (Spark image)
        records = column.to_dict("records")
        return [None if _struct_is_null(r) else r for r in records]
    values = column.to_numpy(dtype=object)
    return [None if v is None or v is pd.NA else v for v in values]


def _predict_frame(
    runner: Any, columns: Sequence[Any], paths: Any, plan: TransformPlan
) -> pd.DataFrame:
    """Predict one Arrow batch: convert rows, run the model in chunks, build output columns."""
    n = len(paths)
    outputs = plan.outputs
    results: list[list[Any]] = [[None] * n for _ in outputs]
    top_labels: list[Any] = [None] * n
    valid = np.ones(n, dtype=bool)
    # Image structs stay a DataFrame: whole chunks of them are converted at once, and only a chunk
    # that needs a closer look is turned into one record per row.
    values: list[Any] = [
        None if item.kind == "image_struct" else _column_values(c)
        for item, c in zip(plan.inputs, columns, strict=True)
    ]
    structs = [
        _image_struct_parts(c) if item.kind == "image_struct" else None
        for item, c in zip(plan.inputs, columns, strict=True)
    ]
    dtypes = [_numpy_dtype(i.dtype) for i in plan.inputs]
    path_values = _column_values(paths)
    handle = plan.handle_invalid
    batch = plan.batch_size
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        ok = np.ones(stop - start, dtype=bool)
        blocks: list[Any] = []
        for i, (item, dt) in enumerate(zip(plan.inputs, dtypes, strict=True)):
            block = None
            if item.kind == "numeric":
                block = _numeric_block(item, values[i][start:stop], dt)
            elif item.kind == "image_struct":
                block = _image_struct_block(item, structs[i], start, stop, dt)
            if block is None:  # row by row: images, strings, nulls, or a shape to report
                if values[i] is None:
                    values[i] = _column_values(columns[i])
                col = values[i]
                block = [None] * (stop - start)
                todo = np.flatnonzero(ok)
                rows = _row_values(plan, item, [col[start + k] for k in todo], dt)
                for k, row in zip(todo, rows, strict=True):
                    if isinstance(row, _Invalid):
                        r = start + k
                        if handle == "error":
                            message = _invalid_message(plan, r, path_values[r], str(row))
                            raise ValueError(message) from None
                        ok[k] = False
                    else:
                        block[k] = row
            blocks.append(block)
        valid[start:stop] = ok
        kept_local = np.flatnonzero(ok)
        if not len(kept_local):
            continue
        kept = [start + k for k in kept_local]
        stacked = [
            (b if ok.all() else b[kept_local])
            if isinstance(b, np.ndarray)
            else np.stack([b[k] for k in kept_local])
            for b in blocks
        ]
        predicted, failures = _run(runner, stacked, plan, len(kept))
        if failures:
            for local, reason in failures.items():
                r = kept[local]
                if handle == "error":
                    raise ValueError(_invalid_message(plan, r, path_values[r], reason))
                valid[r] = False
            kept = [r for local, r in enumerate(kept) if local not in failures]
            if not kept:
                continue
        if plan.scores is not None:
            predicted = plan.scores.apply(predicted[0])
        for j, item in enumerate(outputs):
            converted = _output_rows(predicted[j], item, plan, len(kept))
            for r, value in zip(kept, converted, strict=True):
                results[j][r] = value
        if plan.top_k:
            top = plan.top_k
            scores = predicted[top.index].reshape(len(kept), -1).astype(np.float64)
            if scores.shape[1] != len(top.labels):
                raise ValueError(
                    f"{plan.stage} has {len(top.labels)} labels, but column "
                    f"'{top.column}' holds {scores.shape[1]} scores per row; give one label "
                    "per score."
                )
            for r, pairs in zip(kept, top_k(scores, top.labels, top.k), strict=True):
                top_labels[r] = pairs
    frame = {f"c{j}": pd.Series(results[j], dtype=object) for j in range(len(outputs))}
    if plan.top_k:
        frame["top"] = pd.Series(top_labels, dtype=object)
    frame[VALID] = pd.Series(valid, dtype=bool)
    return pd.DataFrame(frame)


def _invalid_message(plan: TransformPlan, row: int, path: Any, reason: str) -> str:
    where = f"the row with path '{path}'" if path else f"row {row} of a batch"
    columns = ", ".join(f"'{i.column}'" for i in plan.inputs)
    return (
        f"{plan.stage} cannot use the input ({columns}) of {where}: {reason}. {plan.invalid_hint}"
    )


def _data_error(exc: BaseException) -> str | None:
    """The reason a graph rejected its input data (e.g. bytes its decoder cannot read), or None
    for any other error."""
    from sparktf._tf import configure_tensorflow

    if isinstance(exc, configure_tensorflow().errors.InvalidArgumentError):
        message = getattr(exc, "message", "") or str(exc)
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        return f"the model rejected it: {first}"
    return None


def _run(
    runner: Any, arrays: list[np.ndarray], plan: TransformPlan, n: int
) -> tuple[list[np.ndarray], dict[int, str]]:
    """Run the model on ``n`` prepared rows; return the outputs of the rows that ran and, for a
    graph fed raw bytes, the rows it rejected (index -> reason)."""
    raw = any(item.kind == "raw" for item in plan.inputs)
    if not plan.row_mode:
        try:
            outputs = runner(arrays)
        except Exception as exc:
            if not raw or _data_error(exc) is None:
                raise
            return _run_rows(runner, [a[:, None] for a in arrays], n, raw, lambda o: o[0])
        for out, item in zip(outputs, plan.outputs, strict=True):
            if out.ndim == 0 or out.shape[0] != n:
                raise ValueError(
                    f"{plan.stage}: output tensor '{item.tensor}' gave shape "
                    f"{list(out.shape)} for a batch of {n} rows; its first dimension must be the "
                    "batch. For a graph that takes one row per call, its input must be a scalar."
                )
        return outputs, {}

    def squeeze(out: np.ndarray) -> np.ndarray:
        return out[0] if out.ndim >= 1 and out.shape[0] == 1 else out

    return _run_rows(runner, arrays, n, raw, squeeze)


def _run_rows(
    runner: Any, arrays: list[np.ndarray], n: int, raw: bool, per_row: Any
) -> tuple[list[np.ndarray], dict[int, str]]:
    """Run the model one row at a time (``arrays[k][i]`` is row ``i``'s input ``k``)."""
    rows: list[list[np.ndarray]] = []
    failures: dict[int, str] = {}
    for i in range(n):
        try:
            outputs = runner([a[i] for a in arrays])
        except Exception as exc:
            reason = _data_error(exc) if raw else None
            if reason is None:
                raise
            failures[i] = reason
            continue
        rows.append([per_row(out) for out in outputs])
    if not rows:
        return [], failures
    return [np.stack(column) for column in zip(*rows, strict=True)], failures


def _output_rows(values: np.ndarray, item: OutputPlan, plan: TransformPlan, n: int) -> list[Any]:
    kind = item.kind
    if kind in ("double", "long", "boolean", "string"):
        flat = values.reshape(n, -1)
        if flat.shape[1] != 1:
            raise ValueError(
                f"{plan.stage}: output column '{item.column}' holds one value per row, but "
                f"tensor '{item.tensor}' gave {flat.shape[1]} values per row."
            )
        column = flat[:, 0]
        if kind == "double":
            return [float(v) for v in column]
        if kind == "long":
            return [int(v) for v in column]
        if kind == "boolean":
            return [bool(v) for v in column]
        return [_text(v) for v in column]
    flat = values.reshape(n, -1)
    if kind == "array":
        return list(flat.astype(np.float32, copy=False))
    if kind == "vector":
        vectors = flat.astype(np.float64, copy=False)
        nan = np.isnan(vectors).any(axis=1)
        if nan.any():
            raise ValueError(
                f"{plan.stage}: output tensor '{item.tensor}' gave NaN for {int(nan.sum())} of "
                f"{n} rows in a batch, and column '{item.column}' is an ml Vector, which cannot "
                "hold NaN (Spark turns NaN into null on its way from Python). Check the inputs "
                "of those rows, or write the column as 'array' (array<float> keeps NaN)."
            )
        return list(vectors)
    if kind == "array_long":
        return list(flat.astype(np.int64, copy=False))
    if kind == "array_boolean":
        return list(flat.astype(bool, copy=False))
    return [[_text(v) for v in row] for row in flat]


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def shape_text(shape: Sequence[int | None]) -> str:
    """A shape for messages, unknown sizes as ``?``: ``[?, 3]``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
