"""A worker's part of an image column in a data-parallel training
(:mod:`sparktf.training._collective`).

The column is shared whole, compact as it travels (encoded bytes, Spark image structs or paths);
each worker decodes only its shard, with the single-task path's own ``tf.data`` pipeline
(:func:`~sparktf.training._image_pipeline.pixel_batches` and
:func:`~sparktf.training._image_pipeline.index_batches`): the same decode, resize and channels,
and the network's own scaling and augmentation layers. The ``standardize`` scaling uses moments
pooled over every worker's shard (one all-reduce of per-channel sums before the first step), so
each worker's network starts with the same moments and the weights stay identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparktf.training._image_pipeline import (
    check_images,
    decode_rows,
    image_shape,
    index_batches,
    pixel_batches,
    split_rows,
)
from sparktf.training._plans import TrainingData, TrainingSpec
from sparktf.training._shards import shard_rows

__all__ = ["ImageShard", "pool_standardization"]

# Rows decoded at once while summing this shard's pixels for the moments.
_MOMENT_ROWS = 256


class ImageShard:
    """Every ``workers``-th training and held-out row of an image column, from ``rank``."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, seed: int, rank, workers) -> None:
        train, held = split_rows(spec, data, seed)
        self.data = data
        self.shape = image_shape(spec)
        self.train = train[shard_rows(len(train), rank, workers)]
        self.held = None if held is None else held[shard_rows(len(held), rank, workers)]
        mine = self.train if self.held is None else np.concatenate([self.train, self.held])
        check_images(data, mine)  # before the first batch; another worker checks its own rows
        self.adapt = None  # the moments are pooled over the workers instead
        self.smallest = len(train) // workers
        self.rows = len(self.train)
        self._pixels = pixel_batches(data, self.shape)

    def epoch(self, tf, per_batch: int, steps: int, seed: int):
        """This epoch's batches: the shard in a new order, ``steps`` full batches, decoded."""
        order = np.random.default_rng(seed).permutation(self.rows)[: steps * per_batch]
        rows = self.train[order]
        return index_batches(self.data, self._pixels, rows, per_batch, drop_remainder=True)

    def held_out(self, batch: int):
        """This shard's held-out rows in ``(pixels, labels)`` batches (decoded each pass)."""
        if self.held is None or len(self.held) == 0:
            return None
        return index_batches(self.data, self._pixels, self.held, batch)

    def moment_sums(self) -> np.ndarray:
        """``[pixels, sum per channel..., sum of squares per channel...]`` of this shard's
        training images (float64)."""
        channels = self.shape[2]
        sums = np.zeros(1 + 2 * channels)
        for start in range(0, self.rows, _MOMENT_ROWS):
            chunk = decode_rows(self.data, self.train[start : start + _MOMENT_ROWS], self.shape)
            pixels = chunk.reshape(-1, channels).astype(np.float64)
            sums[0] += len(pixels)
            sums[1 : 1 + channels] += pixels.sum(axis=0)
            sums[1 + channels :] += np.square(pixels).sum(axis=0)
        return sums


def pool_standardization(model: Any, shard: ImageShard, all_reduce) -> None:
    """Set the network's ``standardize`` layer to the per-channel mean and variance of every
    worker's training pixels (``all_reduce`` sums an array over the workers), as an ``adapt``
    on all of them would; before any step is traced, which reads the layer's moments."""
    from sparktf.training._networks import unit_scale_for_constants

    sums = all_reduce(shard.moment_sums())
    channels = shard.shape[2]
    count = max(sums[0], 1.0)
    mean = sums[1 : 1 + channels] / count
    variance = np.maximum(sums[1 + channels :] / count - np.square(mean), 0.0)
    norm = model.get_layer("standardize")
    norm.adapt_mean.assign(mean.astype(np.float32))
    norm.adapt_variance.assign(variance.astype(np.float32))
    norm.finalize_state()
    unit_scale_for_constants(norm)
