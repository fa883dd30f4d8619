"""Each example runs end to end with its small settings (``--quick``), as a user would run it.

The examples run as subprocesses on ``local[2]`` (through ``SPARKTF_MASTER``), each in its own
folder; these are the slowest tests of the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_example(name: str, cwd, *args: str) -> str:
    env = {**os.environ, "SPARKTF_MASTER": "local[2]", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("SPARKTF_QUICK", None)
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name), "--quick", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def test_tune_mnist_on_digits(tmp_path):
    out = run_example("tune_mnist.py", tmp_path)
    assert "Tuned 4 settings x 2 folds" in out
    assert "Tuning report (accuracy, best first):" in out
    # one row per setting: hidden layers first, the learning rate further along the row
    rows = re.findall(r"^\s*\[(16|32)\]\s.*\s0\.0(03|30)0?\s", out, re.M)
    assert len(rows) == 4
    accuracy = float(re.search(r"Test accuracy of the best model: ([0-9.]+)", out).group(1))
    assert accuracy > 0.5
    output = tmp_path / "tune_mnist_output"
    assert (output / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert (output / "report.csv").is_file() and (output / "best_model").is_dir()


def test_label_images_prints_top5(tmp_path):
    out = run_example("label_images.py", tmp_path)
    lines = [line for line in out.splitlines() if line.endswith(")]")]
    names = [line.split(":")[0] for line in lines]
    assert names == [
        "china.jpg",
        "china_crop0.jpg",
        "china_crop1.jpg",
        "flower.jpg",
        "flower_crop0.jpg",
        "flower_crop1.jpg",
    ]
    for line in lines:
        scores = [float(s) for s in re.findall(r"', ([0-9.]+)\)", line)]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert (tmp_path / "label_images_output" / "labels").is_dir()


def test_pipeline_cv_saves_and_loads(tmp_path):
    out = run_example("pipeline_cv.py", tmp_path)
    assert len(re.findall(r"cross-validated accuracy 0\.\d{4}", out)) == 2
    assert "loaded back: same predictions: True" in out
    assert "Best model: PipelineModel of 2 stages" in out
