"""Staged training data, worker side: tasks stream the Parquet files the driver staged.

:func:`staged_datasets` gives one training task its ``tf.data`` pipelines: files and their
record batches in a new random order every epoch, rows shuffled within a bounded buffer, then
batched; a task holds at most the buffer in memory, whatever the data's size.
:class:`StagedShard` is one worker's part of a data-parallel training (its own files). The
driver side, which writes the files, is :mod:`sparktf.training._staging`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sparktf.training._plans import TrainingData, TrainingSpec
from sparktf.training._staging import _arrow_uri, _is_local, _local

__all__ = ["StagedShard", "staged_datasets"]

# Rows a task shuffles at once (bounded in bytes too), and rows per Parquet record batch read.
_SHUFFLE_BYTES = 64 * 1024 * 1024
_SHUFFLE_ROWS = 16_384
_READ_ROWS = 4_096


def _files(path: str) -> tuple[Any, list[str]]:
    """The Parquet files under ``path``, with the pyarrow file system that reads them."""
    import pyarrow.fs as pafs

    if _is_local(path):
        fs, root = pafs.LocalFileSystem(), _local(path)
    else:
        fs, root = pafs.FileSystem.from_uri(_arrow_uri(path))
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    names = sorted(
        i.path for i in infos if i.is_file and not os.path.basename(i.path).startswith(("_", "."))
    )
    return fs, names


def _row_count(fs, files: list[str]) -> int:
    """Rows in the Parquet files, from their footers."""
    import pyarrow.parquet as pq

    total = 0
    for name in files:
        with fs.open_input_file(name) as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def _batches(fs, files: list[str], columns: list[str], rng: np.random.Generator | None):
    """Record batches of ``columns`` from ``files``, in a random order when ``rng`` is given."""
    import pyarrow.parquet as pq

    order = list(files)
    if rng is not None:
        rng.shuffle(order)
    for name in order:
        with fs.open_input_file(name) as handle:
            reader = pq.ParquetFile(handle)
            groups = list(range(reader.num_row_groups))
            if rng is not None:
                rng.shuffle(groups)
            for group in groups:
                yield from reader.iter_batches(
                    batch_size=_READ_ROWS, row_groups=[group], columns=columns
                )


def _arrays(batch, width: int, holdout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (float32 rows), y (int32) and the held-out mask of one record batch."""
    xs = batch.column("x").flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    x = xs.reshape(-1, width)
    y = batch.column("y").to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return x, y, holdout(batch)


def _holdout(spec: TrainingSpec, data: TrainingData):
    """The columns a task reads, and the function that marks a record batch's held-out rows."""
    if data.has_indicator:

        def marked(batch):
            return batch.column("v").to_numpy(zero_copy_only=False).astype(bool)

        return ["x", "y", "v"], marked
    fraction = float(spec.validation_split or 0.0)

    def drawn(batch):
        return batch.column("r").to_numpy(zero_copy_only=False) < fraction

    return ["x", "y", "r"], drawn


def _check_rows(fs, files: list[str], data: TrainingData) -> int:
    seen = _row_count(fs, files)
    if seen != int(data.rows):
        raise RuntimeError(
            f"this executor sees {seen} of the {data.rows} staged rows under "
            f"{data.staged}: the staging folder must be one that every executor reads "
            "(stagingDir or spark.sparktf.stagingDir: HDFS, S3 or a shared mount)"
        )
    return seen


def staged_datasets(spec: TrainingSpec, data: TrainingData, seed: int):
    """``(train, validation, train_rows, adapt)`` tf.data pipelines over the staged files.

    ``train`` yields shuffled ``(x, y)`` batches of ``batchSize`` (reshuffled every epoch),
    ``validation`` the held-out rows in order (None when nothing is held out), ``train_rows``
    an estimate of the training rows (for schedules), ``adapt`` the training features in order
    (for the standardization layer).
    """
    import tensorflow as tf

    width = int(data.num_features)
    fs, files = _files(data.staged)
    columns, holdout = _holdout(spec, data)
    batch_size = int(spec.batch_size)
    buffer_rows = max(batch_size, min(_SHUFFLE_ROWS, _SHUFFLE_BYTES // (4 * width)))
    epochs = iter(range(1 << 30))

    def train_rows():
        rng = np.random.default_rng([seed, next(epochs)])
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        buffered = 0
        for batch in _batches(fs, files, columns, rng):
            x, y, out = _arrays(batch, width, holdout)
            keep = ~out
            xs.append(x[keep])
            ys.append(y[keep])
            buffered += int(keep.sum())
            if buffered >= buffer_rows:
                yield from _shuffled(xs, ys, batch_size, rng, flush=False)
                buffered = sum(len(v) for v in ys)
        yield from _shuffled(xs, ys, batch_size, rng, flush=True)

    def rows_where(want_held: bool):
        def generate():
            for batch in _batches(fs, files, columns, None):
                x, y, out = _arrays(batch, width, holdout)
                mask = out if want_held else ~out
                if mask.any():
                    yield x[mask], y[mask]

        return generate

    rows, held_rows = _split_rows(spec, data, fs, files, columns, holdout)
    signature = _signature(tf, width)
    train = (
        tf.data.Dataset.from_generator(train_rows, output_signature=signature)
        .apply(tf.data.experimental.assert_cardinality(-(-rows // batch_size)))
        .prefetch(2)
    )
    validation = _validation(tf, rows_where(True), signature, held_rows, batch_size)
    adapt = tf.data.Dataset.from_generator(rows_where(False), output_signature=signature).map(
        lambda x, y: x
    )
    return train, validation, rows, adapt


def _split_rows(spec: TrainingSpec, data: TrainingData, fs, files, columns, holdout):
    """The training and held-out rows of the staged files, checked: every staged row is seen,
    a ``validationSplit`` holds some out, and some are left to train on."""
    fraction = float(spec.validation_split or 0.0)
    seen = _check_rows(fs, files, data)
    held_rows = 0
    if data.has_indicator or fraction > 0:
        held_rows = sum(int(holdout(b).sum()) for b in _batches(fs, files, columns[2:], None))
    if fraction > 0 and not data.has_indicator and held_rows == 0:
        raise ValueError(
            f"validationSplit={fraction} held out none of the {seen} staged rows; use a larger "
            "fraction or validationIndicatorCol"
        )
    rows = seen - held_rows
    if rows == 0:
        raise ValueError("every staged training row is held out for validation; none is left")
    return rows, held_rows


def _signature(tf, width: int):
    """The ``output_signature`` of the staged pipelines: ``(x, y)`` chunks of any length."""
    return (
        tf.TensorSpec(shape=(None, width), dtype=tf.float32),
        tf.TensorSpec(shape=(None,), dtype=tf.int32),
    )


def _validation(tf, generate, signature, held_rows: int, batch_size: int):
    """The held-out rows of ``generate`` in order, in batches of at least 1024 (None when none)."""
    if not held_rows:
        return None
    eval_size = max(batch_size, 1024)
    chunks = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return (
        chunks.unbatch()
        .batch(eval_size)
        .apply(tf.data.experimental.assert_cardinality(-(-held_rows // eval_size)))
        .prefetch(2)
    )


def _shuffled(xs: list, ys: list, batch_size: int, rng, flush: bool):
    """Shuffle the buffered rows and yield full batches; keep the remainder unless flushing."""
    if not ys:
        return
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    xs.clear()
    ys.clear()
    order = rng.permutation(len(y))
    full = len(y) if flush else len(y) - len(y) % batch_size
    for start in range(0, full, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]
    if full < len(y):
        rest = order[full:]
        xs.append(x[rest])
        ys.append(y[rest])


class StagedShard:
    """One worker's part of staged data in a data-parallel training
    (:mod:`sparktf.training._collective`).

    Worker ``rank`` of ``workers`` streams every ``workers``-th staged file from ``rank`` (the
    staging writes at least one file per worker): its training rows shuffled within a bounded
    buffer each epoch, its held-out rows in order. The standardization adapts to every training
    row, the same on every worker.
    """

    def __init__(self, spec: TrainingSpec, data: TrainingData, seed: int, rank, workers) -> None:
        import tensorflow as tf

        self.width = int(data.num_features)
        self.fs, files = _files(data.staged)
        _check_rows(self.fs, files, data)
        if len(files) < workers:
            raise ValueError(
                f"the training data is staged in {len(files)} files, fewer than the "
                f"{workers} workers that each read their own files"
            )
        self.columns, self.holdout = _holdout(spec, data)
        self.files = files[rank::workers]
        held = [self._held_rows(files[r::workers]) for r in range(workers)]
        rows = [_row_count(self.fs, files[r::workers]) - held[r] for r in range(workers)]
        self.smallest, self.rows = min(rows), rows[rank]
        self.any_held = sum(held) > 0
        self.seed = seed
        signature = self._signature(tf)
        self.adapt = tf.data.Dataset.from_generator(
            self._rows(files, want_held=False), output_signature=signature
        ).map(lambda x, y: x)

    def _signature(self, tf):
        return _signature(tf, self.width)

    def _held_rows(self, files: list[str]) -> int:
        return sum(
            int(self.holdout(b).sum()) for b in _batches(self.fs, files, self.columns[2:], None)
        )

    def _rows(self, files: list[str], want_held: bool):
        def generate():
            for batch in _batches(self.fs, files, self.columns, None):
                x, y, out = _arrays(batch, self.width, self.holdout)
                mask = out if want_held else ~out
                if mask.any():
                    yield x[mask], y[mask]

        return generate

    def epoch(self, tf, per_batch: int, steps: int, seed: int):
        """This epoch's ``steps`` full batches of ``per_batch`` rows from this worker's files."""
        buffer_rows = max(per_batch, min(_SHUFFLE_ROWS, _SHUFFLE_BYTES // (4 * self.width)))

        def batches():
            rng = np.random.default_rng(seed)
            xs: list[np.ndarray] = []
            ys: list[np.ndarray] = []
            buffered = 0
            for batch in _batches(self.fs, self.files, self.columns, rng):
                x, y, out = _arrays(batch, self.width, self.holdout)
                xs.append(x[~out])
                ys.append(y[~out])
                buffered += int((~out).sum())
                if buffered >= buffer_rows:
                    yield from _shuffled(xs, ys, per_batch, rng, flush=False)
                    buffered = sum(len(v) for v in ys)
            yield from _shuffled(xs, ys, per_batch, rng, flush=False)

        dataset = tf.data.Dataset.from_generator(batches, output_signature=self._signature(tf))
        return dataset.take(steps).prefetch(2)

    def held_out(self, batch: int):
        """This worker's held-out rows in batches (None when no worker holds any out)."""
        if not self.any_held:
            return None
        import tensorflow as tf

        chunks = tf.data.Dataset.from_generator(
            self._rows(self.files, want_held=True), output_signature=self._signature(tf)
        )
        return chunks.unbatch().batch(batch)
