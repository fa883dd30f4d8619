"""The tables of benchmarks/bench_photos.py: seconds per side, speed ratios, the share of
sparktf's time that is not the network's, agreement of predictions and the cold start."""

from __future__ import annotations

import json
from typing import Any

SIDES = {
    "a": "(a) tf.data, one process",
    "b": "(b) Pillow UDF + predict_batch_udf",
    "c": "(c) TFGraphTransformer, .keras",
    "c_on": "(c) TFGraphTransformer, .keras, {param}={on}",
    "c_off": "(c) TFGraphTransformer, .keras, {param}={off}",
    "c_graph": "(c) TFGraphTransformer, frozen graph",
    "c_path": "(c) TFGraphTransformer, .keras, reading the files by path",
    "d": "(d) floor: bytes to a pandas UDF and back",
    "d_path": "(d) floor by path: paths to a pandas UDF and back",
    "model": "network alone, decoded batches",
}
# -- report ------------------------------------------------------------------------------------


def _side_label(key: str, decode: tuple[str, dict[str, Any]] | None) -> str:
    text = SIDES.get(key, key)
    if decode is not None:
        param, values = decode
        text = text.format(param=param, on=json.dumps(values["on"]), off=json.dumps(values["off"]))
    return text


def sparktf_keys(medians: dict[str, float]) -> list[str]:
    return [key for key in ("c", "c_on", "c_off", "c_graph", "c_path") if key in medians]


def ratios(row: dict[str, Any], key: str) -> dict[str, float | None]:
    """Speed ratios of sparktf side ``key`` (time of the other / time of ``key``) and the share
    of its time above the floor that is not the network's."""
    median = row["median"]
    mine = median[key]
    floor = "d_path" if key == "c_path" and "d_path" in median else "d"
    above = mine - median[floor]
    return {
        "vs_a": median["a"] / mine,
        "vs_b": median["b"] / mine if "b" in median else None,
        "above_floor": above,
        "not_model_share": (above - median["model"]) / above if above > 0 else None,
    }


def print_report(results: dict[str, Any]) -> None:
    decode = results["decode"]
    print()
    print("| model | set | side | median s | images/s | runs (s) |")
    print("|---|---|---|---:|---:|---|")
    for row in results["rows"]:
        for key, seconds in row["median"].items():
            runs = ", ".join(f"{r:.2f}" for r in row["runs"][key])
            print(
                f"| {row['model']} | {row['set']} | {_side_label(key, decode)} | {seconds:.2f} | "
                f"{row['images'] / seconds:.1f} | {runs} |"
            )
        for name, label in (row["label"] or {}).items():
            inner = f"{label['labelling']:.2f}" if label["labelling"] is not None else "?"
            print(
                f"| {row['model']} | {row['set']} | sparktf label {name}, a fresh process "
                f"(labelling alone: {inner} s) | {label['wall']:.2f} | "
                f"{row['images'] / label['wall']:.1f} | one run |"
            )
    print()
    print(
        "Speed ratio = time of the other side / time of the sparktf side (above 1: sparktf is "
        "faster). Not-model share = ((c) - (d) - network alone) / ((c) - (d)). Agreement with "
        "(a): top-1, top-5 overlap, mean |score difference|."
    )
    print()
    print(
        "| model | set | sparktf side | vs (a) | vs (b) | (c) - (d), s | not-model share | "
        "top-1 | top-5 | mean abs diff |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results["rows"]:
        for key in sparktf_keys(row["median"]):
            r = ratios(row, key)
            agree = row["agreement"].get(f"{key}~a")
            vs_b = f"{r['vs_b']:.2f}x" if r["vs_b"] is not None else "-"
            share = f"{r['not_model_share']:.0%}" if r["not_model_share"] is not None else "-"
            print(
                f"| {row['model']} | {row['set']} | {_side_label(key, decode)} | "
                f"{r['vs_a']:.2f}x | {vs_b} | {r['above_floor']:.2f} | {share} | "
                f"{agree['top1']:.1%} | {agree['top5_overlap']:.1%} | "
                f"{agree['mean_abs_diff']:.2e} |"
            )
    print()
    for row in results["rows"]:
        for pair, agree in row["agreement"].items():
            first, second = pair.split("~")
            print(
                f"agreement {row['model']}/{row['set']}: {_side_label(first, decode)} vs "
                f"{_side_label(second, decode)}: top-1 {agree['top1']:.1%}, top-5 overlap "
                f"{agree['top5_overlap']:.1%}, same top-5 {agree['top5_same']:.1%}, mean abs "
                f"diff {agree['mean_abs_diff']:.2e}, max {agree['max_abs_diff']:.2e}"
            )
    tf_import = results["import_tensorflow"]
    for name, cold in results["cold"].items():
        overhead = cold["cold"] - cold["warm"]
        print(
            f"cold start {name}: first transform of a fresh session {cold['cold']:.2f} s, warm "
            f"{cold['warm']:.2f} s, overhead {overhead:.2f} s; import tensorflow alone "
            f"{tf_import:.2f} s: overhead - import = {overhead - tf_import:.2f} s (target <= 1.5 s)"
            f"; session start {cold['session']:.2f} s"
        )
        if "cold_plan" in cold:
            where = "driver" if cold["tensorflow_in_driver"] else "workers"
            print(
                f"  planning (transform() itself): cold {cold['cold_plan']:.2f} s, warm "
                f"{cold['warm_plan']:.2f} s; the model was loaded for planning on the {where}"
            )
        later = cold.get("after_spark_first")
        if later:
            own = later["cold"] - later["warm"]
            print(
                f"  after a trivial pandas UDF ran first ({later['spark_first_job']:.2f} s, what "
                f"any Spark program's first Python job pays): first transform {later['cold']:.2f}"
                f" s, warm {later['warm']:.2f} s, overhead {own:.2f} s = import "
                f"{'+' if own >= tf_import else '-'} {abs(own - tf_import):.2f} s"
            )
        floor = cold.get("worker_floor")
        if floor:
            own = floor["import"] + floor["load"] + floor["first_call"] - floor["next_call"]
            print(
                f"  one worker's own floor (fresh process): import {floor['import']:.2f} s + "
                f"load {floor['load']:.2f} s + first call beyond a warm one "
                f"{floor['first_call'] - floor['next_call']:.2f} s = {own:.2f} s; overhead "
                f"above it {overhead - own:.2f} s"
            )
