"""A staged image column inside a training task: streamed from Parquet, decoded in batches.

Image data above ``maxBroadcastBytes`` is staged by the driver as Parquet files holding the
column as it is (encoded bytes, image structs or paths), its names (``n``), labels and the
held-out marks (:func:`sparktf.training._image_data.image_training_data`). Each task streams
them as :mod:`sparktf.training._streaming` streams flat features: files and record batches in a
new random order every epoch, rows shuffled within a bounded buffer of *encoded* rows, then
decoded a batch at a time by :func:`~sparktf.training._image_pipeline.decode_training_image` on
a few threads (Pillow releases the GIL). A row that cannot be decoded fails the training with a
``ValueError`` naming its path (its row number is not known to a stream).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sparktf.training._plans import TrainingData, TrainingSpec
from sparktf.training._streaming import _batches, _files, _holdout, _split_rows

__all__ = ["staged_image_datasets"]

# Encoded rows a task shuffles at once.
_BUFFER_ROWS = 4_096


class _Decoder:
    """Decodes lists of staged rows into float32 pixel batches on a few threads."""

    def __init__(self, spec: TrainingSpec, data: TrainingData) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from sparktf.training._image_pipeline import image_shape

        self.data = data
        self.shape = image_shape(spec)
        self.pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1), "sparktf-image-decode")

    def one(self, value: Any, name: Any) -> np.ndarray:
        from sparktf.training._image_pipeline import _row_error, decode_training_image

        try:
            return decode_training_image(self.data.image_kind, value, self.shape[:2], self.shape[2])
        except ValueError as exc:  # InvalidImageError
            raise _row_error(self.data, None, str(exc), name) from None

    def batch(self, values: list, names: list) -> np.ndarray:
        if not values:
            return np.zeros((0, *self.shape), np.float32)
        return np.stack(list(self.pool.map(self.one, values, names))).astype(np.float32)


def _rows(batch, holdout) -> tuple[list, list, np.ndarray, np.ndarray]:
    values = batch.column("x").to_pylist()
    names = batch.column("n").to_pylist()
    y = batch.column("y").to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return values, names, y, holdout(batch)


def staged_image_datasets(spec: TrainingSpec, data: TrainingData, seed: int):
    """What ``model.fit`` reads, the training rows, and the pixel batches that adapt
    ``standardize`` (None for another scaling), streamed from the staged files."""
    import tensorflow as tf

    fs, files = _files(data.staged)
    flat_columns, holdout = _holdout(spec, data)
    columns = ["x", "n", *flat_columns[1:]]
    decoder = _Decoder(spec, data)
    size = int(spec.batch_size)
    epochs = iter(range(1 << 30))

    def train_rows():
        rng = np.random.default_rng([seed, next(epochs)])
        buffer: list[tuple[Any, Any, int]] = []
        for batch in _batches(fs, files, columns, rng):
            values, names, y, out = _rows(batch, holdout)
            buffer += [(values[i], names[i], int(y[i])) for i in np.flatnonzero(~out)]
            if len(buffer) >= _BUFFER_ROWS:
                yield from _shuffled(buffer, size, rng, decoder, flush=False)
        yield from _shuffled(buffer, size, rng, decoder, flush=True)

    def rows_where(want_held: bool):
        def generate():  # full batches of the rows in file order, then the rest
            buffer: list[tuple[Any, Any, int]] = []
            for batch in _batches(fs, files, columns, None):
                values, names, y, out = _rows(batch, holdout)
                keep = np.flatnonzero(out if want_held else ~out)
                buffer += [(values[i], names[i], int(y[i])) for i in keep]
                yield from _in_batches(buffer, size, decoder, flush=False)
            yield from _in_batches(buffer, size, decoder, flush=True)

        return generate

    rows, held_rows = _split_rows(spec, data, fs, files, flat_columns, holdout)
    signature = (
        tf.TensorSpec(shape=(None, *decoder.shape), dtype=tf.float32),
        tf.TensorSpec(shape=(None,), dtype=tf.int32),
    )
    train = (
        tf.data.Dataset.from_generator(train_rows, output_signature=signature)
        .apply(tf.data.experimental.assert_cardinality(-(-rows // size)))
        .prefetch(2)
    )
    validation = None
    if held_rows:
        validation = (
            tf.data.Dataset.from_generator(rows_where(True), output_signature=signature)
            .apply(tf.data.experimental.assert_cardinality(-(-held_rows // size)))
            .prefetch(2)
        )
    adapt = None
    if spec.image_scaling == "standardize":
        adapt = tf.data.Dataset.from_generator(rows_where(False), output_signature=signature)
        adapt = adapt.map(lambda x, y: x)
    inputs = {"x": train, "validation_data": validation, "shuffle": False}
    return inputs, rows, adapt


def _shuffled(buffer: list, size: int, rng, decoder: _Decoder, flush: bool):
    """Shuffle the buffered rows and yield decoded full batches; keep the remainder unless
    flushing."""
    if buffer:
        order = rng.permutation(len(buffer))
        buffer[:] = [buffer[i] for i in order]
    yield from _in_batches(buffer, size, decoder, flush)


def _in_batches(buffer: list, size: int, decoder: _Decoder, flush: bool):
    """Yield the buffered ``(value, name, label)`` rows as decoded full batches, in order;
    keep the remainder unless flushing."""
    rows = list(buffer)
    buffer.clear()
    full = len(rows) if flush else len(rows) - len(rows) % size
    for start in range(0, full, size):
        part = rows[start : start + size]
        pixels = decoder.batch([r[0] for r in part], [r[1] for r in part])
        yield pixels, np.array([r[2] for r in part], dtype=np.int32)
    buffer += rows[full:]
