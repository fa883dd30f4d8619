"""benchmarks/bench_photos.py at its smallest: three tiny JPEGs per set, MobileNetV2 at width
0.35, one repeat without a warm-up, in the suite's session (the ``sparktf label`` command and the
cold-start process are left out: each starts a Spark application of its own)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import _photos  # noqa: E402
import _photos_report  # noqa: E402
import bench_photos  # noqa: E402


def test_agreement_of_identical_and_of_different_scores():
    rng = np.random.default_rng(0)
    scores = rng.random((6, 20))
    same = _photos.agreement(scores, scores)
    assert same["top1"] == same["top5_overlap"] == same["top5_same"] == 1.0
    assert same["mean_abs_diff"] == same["max_abs_diff"] == 0.0
    reversed_order = _photos.agreement(scores, -scores)
    assert reversed_order["top1"] == 0.0 and reversed_order["top5_overlap"] == 0.0
    with pytest.raises(ValueError, match="one shape"):
        _photos.agreement(scores, scores[:3])


def test_sets_hold_the_requested_sizes_and_orientations(tmp_path):
    photo = _photos.make_set(_photos.SetSpec("photo", 6, 1, megapixels=(0.2, 0.4)), str(tmp_path))
    for entry in photo["files"]:
        assert 0.19e6 <= entry["width"] * entry["height"] <= 0.41e6
    presized = _photos.make_set(_photos.SetSpec("presized", 6, 1, side=224), str(tmp_path))
    for entry in presized["files"]:
        assert 224 <= min(entry["width"], entry["height"]) <= 256
    again = _photos.make_set(_photos.SetSpec("presized", 6, 1, side=224), str(tmp_path))
    assert again["files"] == presized["files"]


def test_quick_run_reports_every_side_and_writes_json(spark, tmp_path, capsys):
    out = tmp_path / "results.json"
    args = bench_photos.parse_args(
        ["--quick", "--images", "3", "--megapixels", "0.2,0.4", "--skip", "label,cold",
         "--no-warm-up", "--workdir", str(tmp_path), "--json", str(out)]
    )  # fmt: skip
    results = bench_photos.run(args, spark=spark)
    printed = capsys.readouterr().out
    assert [(r["model"], r["set"]) for r in results["rows"]] == [
        ("mobilenetv2", "photo"),
        ("mobilenetv2", "presized"),
    ]
    for row in results["rows"]:
        assert {"a", "b", "c_graph", "c_path", "d", "d_path", "model"} <= set(row["median"])
        assert _photos_report.sparktf_keys(row["median"])
        # The frozen graph decodes and resizes as the tf.data program does: same scores.
        assert row["agreement"]["c_graph~a"]["top1"] == 1.0
        assert row["agreement"]["c_graph~a"]["mean_abs_diff"] < 1e-4
        # Reading the files by path gives the scores of the bytes read by binaryFile.
        by_path, by_bytes = row["agreement"]["c_path~a"], row["agreement"]["c_on~a"]
        assert by_path == by_bytes
        for agree in row["agreement"].values():
            assert agree["rows"] == 3
    assert "| mobilenetv2 | photo | (a) tf.data, one process |" in printed
    assert "vs (a) | vs (b)" in printed
    assert json.loads(out.read_text())["rows"][0]["images"] == 3
