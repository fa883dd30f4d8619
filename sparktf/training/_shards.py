"""A worker's part of the training rows in a data-parallel training
(:mod:`sparktf.training._collective`): which rows it reads, in what order, in how many steps.

Every worker reads every ``numWorkers``-th training row from its rank, in full batches of
``batchSize / numWorkers``, and every worker runs as many steps as the smallest shard allows, so
that their all-reduces pair up.
"""

from __future__ import annotations

import numpy as np

from sparktf.training._plans import TrainingData, TrainingSpec

__all__ = ["ArrayShard", "network_inputs", "shard_rows", "steps_per_epoch"]


def shard_rows(rows: int, rank: int, workers: int) -> np.ndarray:
    """The row indices of ``rank``'s shard: every ``workers``-th row from ``rank``."""
    return np.arange(rank, rows, workers)


def steps_per_epoch(smallest_shard: int, per_worker_batch: int) -> int:
    """Steps of one epoch: the full per-worker batches of the smallest shard (the same on every
    worker, so that their all-reduces pair up)."""
    steps = smallest_shard // per_worker_batch
    if steps < 1:
        raise ValueError(
            f"a worker's shard holds {smallest_shard} training rows, fewer than one batch of "
            f"{per_worker_batch} per worker (batchSize / numWorkers); lower batchSize or "
            "numWorkers"
        )
    return steps


class ArrayShard:
    """This worker's part of collected rows: every ``workers``-th training and held-out row."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, seed: int, rank, workers) -> None:
        from sparktf.training._training import _split

        x = np.asarray(data.x, dtype=np.float32)
        x_train, y_train, validation = _split(
            spec, x, data.y, data.val_mask, np.random.default_rng(seed)
        )
        self.adapt = x_train  # the standardization sees every training row, on every worker
        self.smallest = len(y_train) // workers
        mine = shard_rows(len(y_train), rank, workers)
        self.x, self.y = x_train[mine], y_train[mine]
        self.rows = len(self.y)
        self.validation = None
        if validation is not None:
            held = shard_rows(len(validation[1]), rank, workers)
            self.validation = (validation[0][held], validation[1][held])

    def epoch(self, tf, per_batch: int, steps: int, seed: int):
        """This epoch's batches: the shard in a new order, ``steps`` full batches."""
        order = np.random.default_rng(seed).permutation(self.rows)[: steps * per_batch]
        dataset = tf.data.Dataset.from_tensor_slices((self.x[order], self.y[order]))
        return dataset.batch(per_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def held_out(self, batch: int):
        if self.validation is None:
            return None
        x, y = self.validation
        return [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(y), batch)]


def network_inputs(spec: TrainingSpec, data: TrainingData) -> dict:
    """What the network of ``spec`` takes besides its features, as ``build_model``'s keywords:
    the image shape of an image column (or None), the ``.keras`` bytes of its base (or None)."""
    image = None
    if data.image_kind:
        from sparktf.training._image_pipeline import image_shape

        image = image_shape(spec)
    base = (data.bases or {}).get(spec.base_model) if spec.base_model else None
    return {"image": image, "base": base}
