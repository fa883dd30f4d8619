"""One worker of a data-parallel training: a process of its own, in a TensorFlow cluster.

A barrier task of :mod:`sparktf.training._multiworker` runs this module in a process of its own,
forked from its Python worker's warm process (:mod:`sparktf.training._warm`) or started fresh
(``python -m sparktf.training._collective RESULT_FD``), with ``TF_CONFIG`` naming every worker: the
collective ops of ``MultiWorkerMirroredStrategy`` must be set up before TensorFlow's runtime
starts, which a reused Spark Python worker may already have done, and a process of its own dies
with its task. The process reads the pickled job from its standard input, trains, and writes the
pickled result to the pipe ``RESULT_FD``: neither is ever a file, so a task killed by Spark leaves
no copy of the training data on the executor.

The training is a custom loop (Keras 3's ``fit`` does not run under a multi-worker strategy):
every worker builds the same model and optimizer in the strategy's scope, reads only its shard
of the training rows in batches of ``batchSize / numWorkers`` (the same number of steps on every
worker), and applies the all-reduced gradients, so the weights stay identical. Metrics are summed
on each worker and all-reduced once per epoch, so early stopping and the non-finite loss check
decide the same on every worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import sys
import time
import traceback
from typing import Any

import numpy as np

from sparktf.training._plans import TrainingData, TrainingSpec, WorkerResult
from sparktf.training._process import PROCESS_NAME, set_name, watch_parent
from sparktf.training._shards import ArrayShard, network_inputs, steps_per_epoch

__all__ = ["main", "train_worker", "weights_digest"]

# Steps run per call into TensorFlow (as the single-task path's steps_per_execution).
STEPS_PER_CALL = 16
#: Whether this process was forked from a warm process (:mod:`sparktf.training._warm`), with
#: TensorFlow already imported, rather than started fresh.
WARM = False


class _Worker:
    """The model, optimizer and compiled steps of one worker."""

    def __init__(self, tf, keras, strategy, spec, data, shard, workers) -> None:
        from sparktf.training._networks import build_model
        from sparktf.training._training import _optimizer

        self.tf = tf
        self.strategy = strategy
        self.workers = workers
        self.global_batch = spec.batch_size
        self.per_batch = spec.batch_size // workers
        self.steps = steps_per_epoch(shard.smallest, self.per_batch)
        self.network = network_inputs(spec, data)
        with strategy.scope():
            model, logits = build_model(
                spec, data.num_features, data.num_classes, shard.adapt, **self.network
            )
            optimizer = _optimizer(keras, spec, spec.epochs * self.steps)
            optimizer.build(model.trainable_variables)
        self.model, self.logits, self.optimizer = model, logits, optimizer
        self.fine_tuned = False
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits, reduction=None)
        self.sums = tf.Variable(tf.zeros(3, tf.float64), trainable=False)  # loss, correct, rows
        self._trace(tf, strategy, model, optimizer)  # traced at their first call
        if self.network["image"] and spec.image_scaling == "standardize":
            from sparktf.training._image_shard import pool_standardization

            pool_standardization(model, shard, self.all_reduce)

    def fine_tune(self, keras, spec: TrainingSpec) -> None:
        """The second phase of a base's training: its top ``trainableLayers`` unfrozen, a new
        optimizer at ``fineTuneLearningRate`` over ``fineTuneEpochs``, the steps traced anew."""
        from sparktf.training._training import _optimizer
        from sparktf.training._transfer import phase_two

        phase_two(self.model, spec)
        tuned = dataclasses.replace(spec, learning_rate=spec.fine_tune_learning_rate)
        with self.strategy.scope():
            self.optimizer = _optimizer(keras, tuned, spec.fine_tune_epochs * self.steps)
            self.optimizer.build(self.model.trainable_variables)
        self.fine_tuned = True
        self._trace(self.tf, self.strategy, self.model, self.optimizer)

    def _trace(self, tf, strategy, model, optimizer) -> None:
        """The worker's TensorFlow functions: steps, evaluation, an all-reduce of metrics."""

        def step(x, y):
            with tf.GradientTape() as tape:
                scores = model(x, training=True)
                per_row = self.loss(y, scores)
                loss = tf.nn.compute_average_loss(per_row, global_batch_size=self.global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            correct = tf.reduce_sum(
                tf.cast(tf.equal(tf.argmax(scores, -1, output_type=tf.int32), y), tf.float64)
            )
            rows = tf.cast(tf.size(y), tf.float64)
            self.sums.assign_add(
                tf.stack([tf.reduce_sum(tf.cast(per_row, tf.float64)), correct, rows])
            )

        @tf.function
        def run_steps(iterator, n):
            for _ in tf.range(n):
                strategy.run(step, args=next(iterator))

        @tf.function
        def evaluate(x, y):
            scores = model(x, training=False)
            per_row = self.loss(y, scores)
            correct = tf.equal(tf.argmax(scores, -1, output_type=tf.int32), y)
            return tf.stack(
                [
                    tf.reduce_sum(tf.cast(per_row, tf.float64)),
                    tf.reduce_sum(tf.cast(correct, tf.float64)),
                    tf.cast(tf.size(y), tf.float64),
                ]
            )

        self.run_steps, self.evaluate = run_steps, evaluate

        @tf.function
        def all_reduce(values):
            per_replica = strategy.run(tf.identity, args=(values,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self._all_reduce = all_reduce

    def time_gradient_all_reduce(self, repeats: int = 10) -> float:
        """Seconds of one all-reduce of gradient-sized tensors (the floor of a step)."""
        tf, strategy = self.tf, self.strategy
        shapes = [v.shape for v in self.model.trainable_variables]

        @tf.function
        def reduce_once():
            def replica():
                grads = [tf.zeros(shape) for shape in shapes]
                context = tf.distribute.get_replica_context()
                return context.all_reduce(tf.distribute.ReduceOp.SUM, grads)[0]

            return strategy.run(replica)

        reduce_once()  # traced and warmed up
        begin = time.perf_counter()
        for _ in range(repeats):
            reduce_once()
        return (time.perf_counter() - begin) / repeats

    def average_moving_statistics(self) -> None:
        """Give every worker the mean of the workers' batch-normalization moving statistics.

        Each worker normalizes a training batch by its own rows' statistics (as data-parallel
        training usually does: no collective per layer and step), so the moving averages used
        for prediction drift apart slightly; averaging them once per epoch keeps the weights
        identical on every worker at each epoch's end.
        """
        variables = [
            v
            for layer in self.model.layers
            if type(layer).__name__ == "BatchNormalization"
            for v in (layer.moving_mean, layer.moving_variance)
        ]
        if not variables or self.workers == 1:
            return
        flat = np.concatenate([np.ravel(v.numpy()) for v in variables]).astype(np.float64)
        mean = self.all_reduce(flat) / self.workers
        start = 0
        for v in variables:
            size = int(np.prod(v.shape))
            v.assign(mean[start : start + size].reshape(v.shape).astype(v.dtype))
            start += size

    def all_reduce(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` over every worker (one collective)."""
        return self._all_reduce(self.tf.constant(values, self.tf.float64)).numpy()

    def train_epoch(self, dataset) -> np.ndarray:
        self.sums.assign(self.tf.zeros(3, self.tf.float64))
        iterator = iter(self.strategy.distribute_datasets_from_function(lambda _: dataset))
        done = 0
        while done < self.steps:
            n = min(STEPS_PER_CALL, self.steps - done)
            self.run_steps(iterator, self.tf.constant(n))
            done += n
        return self.sums.numpy()

    def validate(self, batches) -> np.ndarray:
        """Summed loss, correct predictions and rows over held-out ``(x, y)`` batches."""
        sums = np.zeros(3)
        for x, y in batches:
            sums += self.evaluate(x, y).numpy()
        return sums


def _epoch_logs(train: np.ndarray, val: np.ndarray | None) -> dict[str, float]:
    logs = {"loss": train[0] / max(1.0, train[2]), "accuracy": train[1] / max(1.0, train[2])}
    if val is not None:
        logs["val_loss"] = val[0] / max(1.0, val[2])
        logs["val_accuracy"] = val[1] / max(1.0, val[2])
    return logs


def train_worker(job: dict[str, Any]) -> WorkerResult:
    """Train this worker's part; rank 0's result carries the model. Never raises."""
    spec: TrainingSpec = job["spec"]
    data: TrainingData = job["data"]
    rank, workers = int(job["rank"]), int(job["workers"])
    start = time.time()
    result: WorkerResult = {"rank": rank, "error": None, "history": {}, "model": None}
    try:
        from sparktf._tf import configure_tensorflow

        tf = configure_tensorflow(threads=job["threads"], gpus=job["gpus"])
        import keras

        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        imported = time.time()
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        connected = time.time()
        seed = int(spec.seed) % (2**32)
        keras.utils.set_random_seed(seed)
        shard = _shard(spec, data, seed, rank, workers)
        worker = _Worker(tf, keras, strategy, spec, data, shard, workers)
        ready = time.time()
        result.update(_fit(tf, keras, worker, spec, shard, seed, rank))
        trained = time.time()
        epochs = len(result["history"].get("loss", []))
        result["timing"] = {
            "processStart": start - float(job.get("spawned", start)),
            "warm": WARM,
            "forkedFrom": os.getppid() if WARM else None,
            "setup": ready - start,
            "importTensorFlow": imported - start,
            "joinCluster": connected - imported,
            "train": trained - ready,
            "steps": worker.steps * epochs,
            "allReduce": worker.time_gradient_all_reduce(),
        }
        result["rowsRead"] = int(worker.steps * worker.per_batch) * epochs
        result["shardRows"] = shard.rows
        result["weightsDigest"] = weights_digest(worker.model.get_weights())
        if rank == 0 and result["error"] is None:
            result.update(_export(keras, spec, data, worker))
    except Exception as exc:  # a failed trial is data, not a crash
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
    from sparktf.training._training import peak_rss_mib

    result["peakRssMiB"] = peak_rss_mib()
    result["seconds"] = time.time() - start
    return result


def weights_digest(weights) -> str:
    """A digest of a model's weights, equal for equal weights (to compare workers)."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()[:16]


def _shard(spec: TrainingSpec, data: TrainingData, seed: int, rank: int, workers: int):
    """This worker's shard of ``data``: rows in memory (feature rows, or an image column's
    rows that it decodes), or streamed from staged files."""
    if data.staged is not None:
        from sparktf.training._streaming import StagedShard

        return StagedShard(spec, data, seed, rank, workers)
    if data.image_kind:
        from sparktf.training._image_shard import ImageShard

        return ImageShard(spec, data, seed, rank, workers)
    return ArrayShard(spec, data, seed, rank, workers)


def _fit(tf, keras, worker: _Worker, spec, shard, seed: int, rank: int) -> WorkerResult:
    """The epochs: train, all-reduce the metrics, stop early or on a non-finite loss.

    With a base and ``fineTuneEpochs``, the epochs from ``epochs`` on fine-tune it
    (:meth:`_Worker.fine_tune`); each phase keeps its best epoch's weights and stops early on
    its own, as each phase's ``fit`` of the one-task path does."""
    history: dict[str, list[float]] = {}
    patience = int(spec.early_stopping_patience)
    validation = shard.held_out(max(1024, spec.batch_size))
    monitor = "val_loss" if validation is not None else "loss"
    switch = spec.epochs if spec.base_model and spec.fine_tune_epochs else None
    best, best_weights, wait, first = math.inf, None, 0, 0
    error, epoch = None, 0
    while epoch < spec.total_epochs:
        if epoch == switch:
            _restore(worker, best_weights)
            best, best_weights, wait, first = math.inf, None, 0, epoch
            worker.fine_tune(keras, spec)
        order = (seed + 7919 * (epoch + 1) + rank) % 2**32
        dataset = shard.epoch(tf, worker.per_batch, worker.steps, order)
        local = worker.train_epoch(dataset)
        worker.average_moving_statistics()
        if validation is not None:
            local = np.concatenate([local, worker.validate(validation)])
        sums = worker.all_reduce(local)
        logs = _epoch_logs(sums[:3], sums[3:] if validation is not None else None)
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        if not math.isfinite(logs["loss"]):
            error = f"training loss became {logs['loss']} at epoch {epoch + 1}"
            break
        epoch += 1
        if patience > 0:
            if logs[monitor] < best:
                best, wait = logs[monitor], 0
                best_weights = worker.model.get_weights()
            else:
                wait += 1
                if wait >= patience and epoch - 1 > first:
                    if switch is None or epoch > switch:
                        break
                    epoch = switch  # the first phase stopped early: on to fine-tuning
    # as the one-task path's EarlyStopping(restore_best_weights=True) at the end of training
    # (Keras 3): the best epoch's weights, whether patience ran out or the epochs did
    _restore(worker, best_weights)
    return {"history": history, "error": error}


def _restore(worker: _Worker, weights) -> None:
    if weights is not None:
        worker.model.set_weights(weights)


def _export(keras, spec, data, worker: _Worker) -> WorkerResult:
    """The trained model as ``.keras`` bytes, rebuilt outside the strategy with its weights."""
    from sparktf._loading import keras_to_bytes
    from sparktf.training._networks import build_model

    weights = worker.model.get_weights()
    if not all(np.isfinite(w).all() for w in weights):
        return {"error": "weights became non-finite (nan or inf) during training"}
    plain, logits = build_model(spec, data.num_features, data.num_classes, None, **worker.network)
    if worker.fine_tuned:  # the trainable flags the one-task path's model ends with
        from sparktf.training._transfer import phase_two

        phase_two(plain, spec)
    plain.set_weights(weights)
    result: WorkerResult = {"model": keras_to_bytes(plain), "outputsLogits": logits}
    if worker.network["image"]:  # (height, width, channels)
        image = worker.network["image"]
        result["image"] = {"size": list(image[:2]), "channels": image[2]}
    return result


def main(argv: list[str]) -> int:
    (result_fd,) = argv
    set_name(PROCESS_NAME)  # what ps and top show, fresh or forked
    result_pipe = int(result_fd)
    os.set_inheritable(result_pipe, False)  # not to processes TensorFlow may start
    watch_parent()
    job = pickle.load(sys.stdin.buffer)
    os.environ["TF_CONFIG"] = json.dumps(job["tf_config"])
    result = train_worker(job)
    del job
    with os.fdopen(result_pipe, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
