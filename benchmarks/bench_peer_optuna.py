"""The search of bench_halving.py through MLflow 3's Spark-distributed Optuna study, for comparison.

    pip install -e ".[bench]"     # mlflow>=3, optuna>=4
    python benchmarks/bench_peer_optuna.py --mnist ../shared/data/mnist --rows 12000 --epochs 9

The same 16 settings as sparktf's successive-halving search in ``bench_halving.py`` (hidden
units [128, 512] x learning rate [3e-4, 1e-3, 3e-3, 3e-2] x dropout [0.0, 0.3], batch 128,
``--epochs`` epochs, a 0.8/0.2 train/validation split of the first ``--rows`` MNIST training
images) run as an Optuna study through ``mlflow.pyspark.optuna.MlflowSparkStudy``: the trials run
as Spark tasks (one task per slot, each running its share of the trials one after another) on
a local session, the study lives in an MLflow tracking store (a fresh SQLite file in a temporary
folder, no MLflow server), and an Optuna pruner stops trials early from the validation accuracy
each one reports after every epoch.

The peer's own choices, where it cannot copy sparktf exactly:

* the objective is a plain Keras 3 model, Input(784) -> Dense(h, relu) -> Dropout(d) ->
  Dense(10 logits), Adam(lr), sparse categorical cross-entropy from logits, one TensorFlow
  thread per trial as in a Spark task, Keras seed 11;
* pixels are divided by 255 (sparktf's TFClassifier standardizes each feature instead);
* the split is a numpy permutation with seed 5 (sparktf's is a Spark random split);
* the sampler is Optuna's ``GridSampler`` over the 16 settings (suggested as categorical
  choices), so 16 trials visit each setting once, as sparktf's search does; ``--sampler tpe``
  uses Optuna's default TPE sampler instead (which may repeat settings);
* ``--pruner successive-halving`` is ``SuccessiveHalvingPruner(reduction_factor=F,
  min_resource=E)`` with F = ``--factor`` (3, as bench_halving's default) and E the epochs of
  the first rung of sparktf's search of the 16 settings with that factor
  (``sparktf.search.rung_schedule``): rungs after E, E*F, E*F^2, ... epochs, as sparktf's
  where ``--epochs`` is E times a power of F (1, 3, 9 for 9 epochs; 3, 9, 27 for 27), close
  to them otherwise (both are printed). Unlike sparktf's it is asynchronous: a trial reaching
  a rung is judged at once against the trials that reached it before (from any slot, through
  the MLflow store), so the first to reach a rung always goes on. ``--pruner median`` is
  ``MedianPruner()`` with Optuna's defaults;
* the validation accuracy is measured and reported after every epoch (the pruner needs it),
  not only at the end of a rung; the pruner is not asked after the last epoch (that would
  save nothing and turn a finished trial into a pruned one).

Prints the wall time of ``optimize()``, the trials completed / pruned / failed, the trials'
durations summed (task-seconds as Optuna records them, MLflow storage calls included) and the
time spent inside the objective summed (building, training and scoring the model: what
sparktf's task-seconds count), the best trial and its validation accuracy, and that trial's
test accuracy on the 10,000 MNIST test images (each completed trial saves its weights to the
temporary folder, which the driver reads: that needs the executors on this machine, as with a
local master). Each trial's line shows the Spark partition (slot) that ran it.

``--engine driver`` runs the same study with plain Optuna on the driver (in-memory storage,
``n_jobs`` threads, no Spark, no MLflow): a reference, labelled as such in the output. It is
also what runs, with a notice, when ``mlflow.pyspark.optuna`` cannot be imported.

Without ``--mnist`` sklearn's bundled digits are used (8x8 pixels in 0..16, divided by 16; a
quick check, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from _machine import describe

HIDDEN = [128, 512]
RATES = [3e-4, 1e-3, 3e-3, 3e-2]
DROPOUTS = [0.0, 0.3]
BATCH = 128
SETTINGS = len(HIDDEN) * len(RATES) * len(DROPOUTS)
SEED = 11
SPLIT_SEED = 5


def _data(args):
    """(x_train, y_train, x_val, y_val, x_test, y_test, scale): pixels as stored (uint8 for
    MNIST) and the number to divide them by; a 0.8/0.2 split of the training rows."""
    if args.mnist:
        from sparktf.datasets import _MNIST_FILES, _find, read_idx

        def split(name):
            images, labels = _MNIST_FILES[name]
            x = read_idx(_find(args.mnist, images))
            y = read_idx(_find(args.mnist, labels))
            return x.reshape(len(x), -1), y.astype(np.int64)

        x, y = split("train")
        x, y = x[: args.rows], y[: args.rows]
        x_test, y_test = split("test")
        scale = 255.0
    else:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        x, x_test, y, y_test = train_test_split(
            bunch.data.astype(np.uint8), bunch.target, train_size=0.8, random_state=7
        )
        scale = 16.0
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    cut = round(0.8 * len(x))
    train, val = order[:cut], order[cut:]
    return x[train], y[train], x[val], y[val], x_test, y_test, scale


def _tensorflow(inter_op: int = 1):
    """TensorFlow with one thread per op and ``inter_op`` between ops (set once per process,
    before TensorFlow starts), imported with sparktf's filter of its start-up notices."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sparktf._quiet import import_tensorflow

    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # already initialized by an earlier trial in this worker
        pass
    return tf


def _model(keras, features, hidden, learning_rate, dropout):
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _objective(data, epochs, weights_dir):
    """The objective Optuna calls in each trial; holds the data (shipped in the Spark task)."""
    x_train, y_train, x_val, y_val, _, _, scale = data

    def objective(trial):
        try:
            return train(trial)
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    def train(trial):
        import optuna

        started = time.time()
        hidden = trial.suggest_categorical("hidden", HIDDEN)
        learning_rate = trial.suggest_categorical("learning_rate", RATES)
        dropout = trial.suggest_categorical("dropout", DROPOUTS)
        tf = _tensorflow()
        threads = tf.config.threading.get_intra_op_parallelism_threads()
        trial.set_user_attr("slot", f"{_slot()}, {threads} thread(s)")
        import keras

        keras.utils.set_random_seed(SEED)
        model = _model(keras, x_train.shape[1], hidden, learning_rate, dropout)

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                trial.report(float(logs["val_accuracy"]), epoch + 1)  # step = epochs trained
                # Pruning after the last epoch would save nothing and drop a finished trial.
                if epoch + 1 < epochs and trial.should_prune():
                    trial.set_user_attr("objective_seconds", time.time() - started)
                    raise optuna.TrialPruned(f"pruned after {epoch + 1} epochs")

        history = model.fit(
            x_train.astype(np.float32) / scale,
            y_train,
            batch_size=BATCH,
            epochs=epochs,
            validation_data=(x_val.astype(np.float32) / scale, y_val),
            callbacks=[Report()],
            verbose=0,
        )
        np.savez(os.path.join(weights_dir, f"trial-{trial.number}.npz"), *model.get_weights())
        trial.set_user_attr("objective_seconds", time.time() - started)
        return float(history.history["val_accuracy"][-1])

    return objective


def _slot():
    """The Spark partition running this trial ("driver" off a Spark task)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return "driver" if context is None else f"partition {context.partitionId()}"


def _first_rung(args) -> int:
    """The epochs of the first rung of sparktf's search of the 16 settings."""
    from sparktf.search import rung_schedule

    return rung_schedule(SETTINGS, args.epochs, args.factor)[0].epochs


def _pruner(args):
    import optuna

    if args.pruner == "median":
        return optuna.pruners.MedianPruner()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=_first_rung(args), reduction_factor=args.factor
    )


def _sampler(name):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=SEED)
    space = {"hidden": HIDDEN, "learning_rate": RATES, "dropout": DROPOUTS}
    return optuna.samplers.GridSampler(space, seed=SEED)


def _run_spark(args, objective, folder):
    """The study through MlflowSparkStudy; returns (label, wall seconds, trials, slots)."""
    import mlflow
    import optuna
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy

    from sparktf.session import get_spark

    spark = get_spark()
    slots = spark.sparkContext.defaultParallelism
    uri = f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "bench_peer_optuna", artifact_location=os.path.join(folder, "artifacts")
    )
    storage = MlflowStorage(experiment_id=experiment)
    study = MlflowSparkStudy(
        "bench_peer_optuna",
        storage,
        sampler=_sampler(args.sampler),
        pruner=_pruner(args),
        mlflow_tracking_uri=uri,
        direction="maximize",
    )
    start = time.time()
    study.optimize(objective, n_trials=args.trials, n_jobs=slots, catch=(Exception,))
    wall = time.time() - start
    trials = optuna.load_study(study_name="bench_peer_optuna", storage=storage).trials
    spark.stop()
    label = f"MlflowSparkStudy (mlflow {mlflow.__version__}, optuna {optuna.__version__})"
    return label, wall, trials, slots


def _run_driver(args, objective, slots=2):
    """The reference: plain Optuna on the driver, in-memory storage, ``slots`` threads."""
    import optuna

    _tensorflow(inter_op=slots)  # imported once, before the threads (not thread-safe)
    study = optuna.create_study(
        sampler=_sampler(args.sampler), pruner=_pruner(args), direction="maximize"
    )
    start = time.time()
    study.optimize(objective, n_trials=args.trials, n_jobs=slots, catch=(Exception,))
    wall = time.time() - start
    label = (
        f"REFERENCE, NOT THE PEER: plain Optuna {optuna.__version__} on the driver "
        f"({slots} threads sharing one TensorFlow, 1 thread per op, in-memory storage, "
        "no Spark, no MLflow)"
    )
    return label, wall, study.trials, slots


def _test_accuracy(best, data, weights_dir):
    """The best trial's saved model scored on the test images, or None without its weights."""
    path = os.path.join(weights_dir, f"trial-{best.number}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    _, _, _, _, x_test, y_test, scale = data
    _tensorflow()
    import keras

    p = best.params
    model = _model(keras, x_test.shape[1], p["hidden"], p["learning_rate"], p["dropout"])
    model.set_weights(weights)
    logits = model.predict(x_test.astype(np.float32) / scale, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: the digits)")
    parser.add_argument("--rows", type=int, default=12000, help="MNIST training rows used")
    parser.add_argument("--epochs", type=int, default=9, help="the full budget of every trial")
    parser.add_argument("--trials", type=int, default=16, help="trials of the study")
    parser.add_argument(
        "--pruner", choices=["successive-halving", "median"], default="successive-halving"
    )
    parser.add_argument(
        "--factor", type=int, default=3, help="reduction factor of successive halving (>= 2)"
    )
    parser.add_argument(
        "--sampler", choices=["grid", "tpe"], default="grid", help="grid: each setting once"
    )
    parser.add_argument(
        "--engine",
        choices=["spark", "driver"],
        default="spark",
        help="spark: MlflowSparkStudy (the peer); driver: plain Optuna threads (a reference)",
    )
    args = parser.parse_args()
    if args.factor < 2:
        parser.error("--factor must be 2 or more (Optuna's SuccessiveHalvingPruner needs it)")
    print(describe())
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = _data(args)
    folder = tempfile.mkdtemp(prefix="bench_peer_optuna-")
    weights_dir = os.path.join(folder, "weights")
    os.makedirs(weights_dir)
    objective = _objective(data, args.epochs, weights_dir)
    try:
        engine = args.engine
        if engine == "spark":
            try:
                import mlflow.pyspark.optuna.study  # noqa: F401
            except ImportError as exc:
                print(f"\nmlflow.pyspark.optuna is not available ({exc}): running the reference")
                engine = "driver"
        if engine == "spark":
            label, wall, trials, slots = _run_spark(args, objective, folder)
        else:
            label, wall, trials, slots = _run_driver(args, objective)
        _report(args, data, label, wall, trials, slots, weights_dir)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(args, data, label, wall, trials, slots, weights_dir):
    from optuna.trial import TrialState

    def count(state):
        return sum(t.state == state for t in trials)

    finished = [t for t in trials if t.datetime_start and t.datetime_complete]
    durations = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished)
    inside = sum(float(t.user_attrs.get("objective_seconds", 0.0)) for t in trials)
    rows = len(data[0]) + len(data[2])
    source = f"MNIST, {rows} rows" if args.mnist else f"digits, {rows} rows"
    print(f"\n{label}")
    print(
        f"  {args.trials} trials on {slots} slots, {args.epochs} epochs, {source}, "
        f"train/validation 0.8, sampler {args.sampler}, pruner {args.pruner}"
    )
    if args.pruner == "successive-halving":
        from sparktf.search import rung_schedule

        steps, step = [], _first_rung(args)
        while step < args.epochs:
            steps.append(step)
            step *= args.factor
        ours = [r.epochs for r in rung_schedule(SETTINGS, args.epochs, args.factor)]
        print(
            f"  pruner rungs after epochs {steps} (then the end, {args.epochs}); sparktf's "
            f"factor {args.factor} rungs: {ours}"
        )
    print(f"  wall of optimize(): {wall:.1f}s")
    print(
        f"  trials: {count(TrialState.COMPLETE)} completed, {count(TrialState.PRUNED)} pruned, "
        f"{count(TrialState.FAIL)} failed, {len(trials)} in all"
    )
    failed = [t for t in trials if t.state == TrialState.FAIL]
    for t in failed[:3]:
        print(f"    trial #{t.number} failed: {t.user_attrs.get('error', '(no message)')}")
    print(
        f"  task-seconds: {durations:.1f} (trial durations summed), {inside:.1f} inside the "
        "objective (model build + training + scoring)"
    )
    print("  per trial: epochs trained, state, validation accuracy at its last epoch, slot")
    for t in sorted(trials, key=lambda t: t.number):
        last = t.intermediate_values.get(t.last_step) if t.last_step else None
        accuracy = f"{last:.4f}" if last is not None else "-"
        print(
            f"    #{t.number:<2d} {t.last_step or 0:2d} epochs  {t.state.name.lower():8s} "
            f"{accuracy}  {t.user_attrs.get('slot', '?')}  {t.params}"
        )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        print("  no trial completed")
        return
    best = max(complete, key=lambda t: t.value)
    test = _test_accuracy(best, data, weights_dir)
    test_text = f", test {test:.4f}" if test is not None else ""
    print(f"  best trial #{best.number} {best.params}: validation {best.value:.4f}{test_text}")


if __name__ == "__main__":
    main()
