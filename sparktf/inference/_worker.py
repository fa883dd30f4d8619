"""What runs inside the pandas UDF of a transform, on the executors.

The driver (:mod:`sparktf.inference._driver`) plans a transform and ships the model; each Python
worker then runs :func:`predict_batches` on its Arrow batches: it loads the model once (a small
cache keyed by the model's identity), converts each batch's columns to arrays of the input
tensors' shapes and dtypes (:mod:`sparktf.inference._rows`), runs the model ``batchSize`` rows
at a time, applies a classifier's head when the plan has one, and builds one column per
output, the top-K ``(label, score)`` pairs and a validity flag per row. Rows that cannot be fed
(nulls, undecodable images, data a graph rejects) fail the task or are marked invalid, as
``handleInvalid`` says.

Nothing here touches the driver's Spark objects or imports a stage; TensorFlow is imported
only inside functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sparktf.image import top_k
from sparktf.inference._plan import VALID, OutputPlan, TransformPlan
from sparktf.inference._rows import (
    Invalid,
    column_values,
    image_struct_block,
    image_struct_parts,
    numeric_block,
    numpy_dtype,
    row_values,
)

__all__ = ["model_bytes", "predict_batches"]


def model_bytes(handle: Any) -> bytes | None:
    """The model's bytes from the handle the driver shipped
    (:func:`sparktf.inference._udf.ship_model`), or None when nothing was shipped and the model
    is read from its path."""
    return None if handle is None else handle.value


def predict_batches(
    plan: TransformPlan, handle: Any, batches: Iterator[tuple[pd.Series, ...]]
) -> Iterator[pd.DataFrame]:
    """The body of the UDF: each batch is the input columns followed by the path column."""
    from sparktf.inference._sources import cached_model

    model = cached_model(plan.model.source_spec(), lambda: model_bytes(handle))
    runner = model.runner(
        [i.tensor for i in plan.inputs],
        [o.tensor for o in plan.outputs],
        freeze=plan.freeze,
    )
    for columns in batches:
        yield _predict_frame(runner, columns[:-1], columns[-1], plan)


@dataclass
class _Frame:
    """One Arrow batch being predicted: its inputs (``values`` per input column, converted to
    Python values when first needed; ``structs``: image structs split once) and the outputs,
    top-K pairs and validity flags written so far."""

    plan: TransformPlan
    columns: Sequence[Any]
    values: list[Any]
    structs: list[Any]
    dtypes: list[Any]
    paths: list[Any]
    results: list[list[Any]]
    top_labels: list[Any]
    valid: np.ndarray

    @classmethod
    def start(cls, plan: TransformPlan, columns: Sequence[Any], paths: Any) -> _Frame:
        n = len(paths)
        # Image structs stay a DataFrame: whole chunks of them are converted at once, and only a
        # chunk that needs a closer look is turned into one record per row.
        pairs = list(zip(plan.inputs, columns, strict=True))
        return cls(
            plan=plan,
            columns=columns,
            values=[None if i.kind == "image_struct" else column_values(c) for i, c in pairs],
            structs=[image_struct_parts(c) if i.kind == "image_struct" else None for i, c in pairs],
            dtypes=[numpy_dtype(i.dtype) for i in plan.inputs],
            paths=column_values(paths),
            results=[[None] * n for _ in plan.outputs],
            top_labels=[None] * n,
            valid=np.ones(n, dtype=bool),
        )

    def row_values(self, i: int) -> list[Any]:
        """Input column ``i`` as one Python value per row."""
        if self.values[i] is None:
            self.values[i] = column_values(self.columns[i])
        return self.values[i]

    def reject(self, row: int, reason: str) -> None:
        """Row ``row`` cannot be fed: fail the task, or mark it invalid (``handleInvalid``)."""
        if self.plan.handle_invalid == "error":
            raise ValueError(_invalid_message(self.plan, row, self.paths[row], reason))
        self.valid[row] = False

    def write(self, predicted: list[np.ndarray], kept: list[int]) -> None:
        """Write the model's outputs for the rows ``kept`` (in order)."""
        plan = self.plan
        for j, item in enumerate(plan.outputs):
            converted = _output_rows(predicted[j], item, plan, len(kept))
            for r, value in zip(kept, converted, strict=True):
                self.results[j][r] = value
        if plan.top_k:
            for r, pairs in zip(kept, _top_labels(plan, predicted, len(kept)), strict=True):
                self.top_labels[r] = pairs

    def output(self) -> pd.DataFrame:
        frame = {f"c{j}": pd.Series(column, dtype=object) for j, column in enumerate(self.results)}
        if self.plan.top_k:
            frame["top"] = pd.Series(self.top_labels, dtype=object)
        frame[VALID] = pd.Series(self.valid, dtype=bool)
        return pd.DataFrame(frame)


def _predict_frame(
    runner: Any, columns: Sequence[Any], paths: Any, plan: TransformPlan
) -> pd.DataFrame:
    """Predict one Arrow batch: convert rows, run the model in chunks, build output columns."""
    frame = _Frame.start(plan, columns, paths)
    n = len(frame.paths)
    for start in range(0, n, plan.batch_size):
        _predict_chunk(runner, frame, start, min(start + plan.batch_size, n))
    return frame.output()


def _predict_chunk(runner: Any, frame: _Frame, start: int, stop: int) -> None:
    """Rows ``start:stop`` of the batch: their inputs, the model, their outputs."""
    plan = frame.plan
    ok = np.ones(stop - start, dtype=bool)
    blocks = [_input_block(frame, i, start, stop, ok) for i in range(len(plan.inputs))]
    frame.valid[start:stop] = ok
    kept_local = np.flatnonzero(ok)
    if not len(kept_local):
        return
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
            frame.reject(kept[local], reason)
        kept = [r for local, r in enumerate(kept) if local not in failures]
        if not kept:
            return
    if plan.scores is not None:
        predicted = plan.scores.apply(predicted[0])
    frame.write(predicted, kept)


def _input_block(frame: _Frame, i: int, start: int, stop: int, ok: np.ndarray) -> Any:
    """Input ``i`` of rows ``start:stop``: one array when the chunk converts at once, else a list
    of per-row arrays (None where a row was rejected; ``ok`` is cleared for it)."""
    item, dtype = frame.plan.inputs[i], frame.dtypes[i]
    block = None
    if item.kind == "numeric":
        block = numeric_block(item, frame.values[i][start:stop], dtype)
    elif item.kind == "image_struct":
        block = image_struct_block(item, frame.structs[i], start, stop, dtype)
    if block is not None:
        return block
    # Row by row: images, strings, nulls, or a shape to report.
    values = frame.row_values(i)
    rows: list[Any] = [None] * (stop - start)
    todo = np.flatnonzero(ok)
    converted = row_values(frame.plan, item, [values[start + k] for k in todo], dtype)
    for k, row in zip(todo, converted, strict=True):
        if isinstance(row, Invalid):
            frame.reject(start + k, str(row))
            ok[k] = False
        else:
            rows[k] = row
    return rows


def _top_labels(plan: TransformPlan, predicted: list[np.ndarray], n: int) -> list[Any]:
    top = plan.top_k
    scores = predicted[top.index].reshape(n, -1).astype(np.float64)
    if scores.shape[1] != len(top.labels):
        raise ValueError(
            f"{plan.stage} has {len(top.labels)} labels, but column '{top.column}' holds "
            f"{scores.shape[1]} scores per row; give one label per score."
        )
    return top_k(scores, top.labels, top.k)


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
