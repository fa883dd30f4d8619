"""The printed report of benchmarks/bench_tuning.py: each side's rounds, the speedups, the time
of one model with one thread and with all, the reading of it, the settings one by one and the
scaling from one executor to two."""

from __future__ import annotations

from typing import Any

import numpy as np
from _tuning import setting_label


def spread(fits: list[dict[str, Any]]) -> str:
    seconds = [f["seconds"] for f in fits]
    return f"{np.mean(seconds):.1f} s per model (min {min(seconds):.1f}, max {max(seconds):.1f})"


def rounds_of_tasks(fits: list[dict[str, Any]], slots: int) -> float:
    """The time ``slots`` task slots need for these task times, largest first (a lower bound
    on the job's time without fixed costs)."""
    load = [0.0] * slots
    for seconds in sorted((f["seconds"] for f in fits), reverse=True):
        load[load.index(min(load))] += seconds
    return max(load)


def print_report(
    args,
    cores: int,
    grid: list[dict[str, Any]],
    warm_a: dict[str, Any],
    rounds_a: list[dict[str, Any]],
    rounds_a2: list[dict[str, Any]],
    rounds_b: list[dict[str, Any]],
) -> None:
    """Print (a), (a') when it ran, (b) and how they compare, the best round of each side
    counting."""
    a = min(rounds_a, key=lambda r: r["seconds"])
    b = min(rounds_b, key=lambda r: r["seconds"])

    print(f"\n(a) sequential Keras loop on the driver, TensorFlow on all {cores} cores")
    print(
        "    warm-up (import TensorFlow, trace a first model; not counted): "
        f"{warm_a['warmup']:.1f} s"
    )
    print(
        f"    same architecture as TFClassifier's: {warm_a['params'][0]} parameters "
        f"(hand-written) vs {warm_a['params'][1]} (sparktf.training._training.build_model)"
    )
    for i, r in enumerate(rounds_a, 1):
        print(
            f"    round {i}: grid {r['seconds']:.1f} s  ({spread(r['fits'])})  "
            f"load {r['load'][0]} -> {r['load'][1]}"
        )

    if rounds_a2:
        print(
            f"\n(a') sparktf's training function (sparktf.training._training.train_one) in the "
            f"same loop on the driver, TensorFlow on all {cores} cores: the tasks' work without "
            "Spark"
        )
        for i, r in enumerate(rounds_a2, 1):
            print(
                f"    round {i}: grid {r['seconds']:.1f} s  ({spread(r['fits'])})  "
                f"load {r['load'][0]} -> {r['load'][1]}"
            )

    print(f"\n(b) TFClassifier.fitMultiple on local[{cores}]: one Spark job, one task per setting")
    print(
        f"    warm-up before each round (Python workers started, TensorFlow imported in each of "
        f"{rounds_b[0]['warmupWorkers']}; not counted): "
        + ", ".join(f"{r['warmup']:.1f} s" for r in rounds_b)
    )
    for i, r in enumerate(rounds_b, 1):
        workers = len({f["pid"] for f in r["fits"]})
        threads = sorted({f["threads"] for f in r["fits"]})
        print(
            f"    round {i}: grid {r['seconds']:.1f} s  ({spread(r['fits'])}; {workers} Python "
            f"workers, TensorFlow threads per task: {threads})  "
            f"load {r['load'][0]} -> {r['load'][1]}"
        )
    print("    the grid time includes the Arrow collect, the broadcast, serializing each model")

    speedup = a["seconds"] / b["seconds"]
    per_round = ", ".join(
        f"{ra['seconds'] / rb['seconds']:.2f}x" for ra, rb in zip(rounds_a, rounds_b, strict=True)
    )
    print(
        f"\nspeedup (a)/(b), best round of each: {a['seconds']:.1f} / {b['seconds']:.1f} = "
        f"{speedup:.2f}x against the sequential Keras loop (target 1.7x on 2 cores; limit "
        f"{cores}x on {cores} cores when both sides run the same training code); "
        f"round by round: {per_round}"
    )
    if rounds_a2:
        a2 = min(rounds_a2, key=lambda r: r["seconds"])
        print(
            f"speedup (a')/(b): {a2['seconds']:.1f} / {b['seconds']:.1f} = "
            f"{a2['seconds'] / b['seconds']:.2f}x (task parallelism alone); "
            f"(a)/(a') = {a['seconds'] / a2['seconds']:.2f}x (sparktf's training function "
            "against the plain Keras fit, both in one process)"
        )
        overhead = float(np.mean([f["seconds"] for f in b["fits"]])) - float(
            np.mean([f["seconds"] for f in a2["fits"]])
        )
        print(
            f"per-trial overhead: a task's trial took {overhead:+.2f} s against the same "
            f"training function on the driver; the job's fixed cost (grid time minus "
            f"{len(grid) // cores} rounds of tasks): "
            f"{b['seconds'] - rounds_of_tasks(b['fits'], cores):.2f} s"
        )
    one_thread = float(np.mean([f["seconds"] for f in b["fits"]]))
    all_threads = float(np.mean([f["seconds"] for f in a["fits"]]))
    gain = one_thread / all_threads
    print(
        f"one model alone: {all_threads:.1f} s with {cores} TensorFlow threads (a), "
        f"{one_thread:.1f} s with 1 thread inside a task (b); time with 1 thread / time with "
        f"{cores} = {gain:.2f}"
    )
    if gain < 1.3:
        print(
            f"reading: at batch size {args.batch_size} one training step of this MLP is too "
            f"small for TensorFlow to spread over {cores} threads, so one model cannot keep "
            f"{cores} cores busy; {cores} models at once, one thread each, can. That is why a "
            "grid gains from task parallelism here. Large batches or convolutions, which one "
            "model already spreads over all cores, gain less on a single machine."
        )
    else:
        print(
            "reading: one model already spreads over several threads here (or other processes "
            "disturbed the timing), so task parallelism gains less than the number of cores."
        )
    print("\nper setting: (a) seconds, final training loss | (b) task seconds, final loss")
    for setting, fa, fb in zip(grid, a["fits"], b["fits"], strict=True):
        print(
            f"    {setting_label(setting):40s} {fa['seconds']:6.1f} s  loss {fa['loss']:.4f} | "
            f"{fb['seconds']:6.1f} s  loss {fb['loss']:.4f}"
        )


def print_cluster(master: str, c: dict[str, Any]) -> None:
    """Print one line of (c): the best round on ``master``."""
    jvms = len({f["jvmPid"] for f in c["fits"]})
    print(
        f"    {master}: grid {c['seconds']:.1f} s  ({spread(c['fits'])}; "
        f"{c['executors']} executor(s) registered, tasks ran in {jvms} executor JVM(s); "
        f"start-up {c['startup']:.1f} s and warm-up {c['warmup']:.1f} s not counted; "
        f"rounds: {', '.join(f'{t:.1f} s' for t in c['rounds'])}, best shown)  "
        f"load {c['load'][0]} -> {c['load'][1]}"
    )


def print_scaling(t1: float, t2: float) -> None:
    """Print the speedup and efficiency of (c) from the grid times on one and two executors."""
    print(
        f"    speedup t1/t2 = {t1 / t2:.2f}x; efficiency t1 / (2 * t2) = "
        f"{t1 / (2 * t2):.2f} (1.00 is perfect; baseline: the 1-executor run)"
    )
