"""Each example runs end to end with its small settings (``--quick``), as a user would run it.

The examples run as ``python examples/NAME.py --quick`` does (``__main__``, the same arguments,
in a folder of their own), in this process on the suite's ``local[2]`` session: an example's
``get_spark`` returns the active session, as it would the one ``SPARKTF_MASTER=local[2]`` starts.
A fresh process's quiet start-up is the test of the ``sparktf demo`` subprocess
(tests/tools/test_cli_demo.py).
"""

from __future__ import annotations

import os
import re
import runpy
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def run_example(spark, capsys, monkeypatch):
    """``run_example(name, cwd, *args)``: the example's standard output."""

    def run(name: str, cwd, *args: str) -> str:
        path = os.path.join(ROOT, "examples", name)
        monkeypatch.delenv("SPARKTF_QUICK", raising=False)
        monkeypatch.chdir(cwd)
        # its default output folder, in ``cwd``: named absolutely, as Spark's JVM (started
        # elsewhere) resolves a relative path against its own folder
        output = os.path.join(str(cwd), name.replace(".py", "_output"))
        monkeypatch.setattr(sys, "argv", [path, "--quick", "--output", output, *args])
        capsys.readouterr()
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:  # argparse, or an example's own exit
            assert exc.code in (0, None), f"{name} exited with {exc.code}"
        return capsys.readouterr().out

    return run


def test_tune_mnist_on_digits(run_example, tmp_path):
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


def test_label_images_prints_top5(run_example, tmp_path):
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


def test_pipeline_cv_saves_and_loads(run_example, tmp_path):
    out = run_example("pipeline_cv.py", tmp_path)
    assert len(re.findall(r"cross-validated accuracy 0\.\d{4}", out)) == 2
    assert "loaded back: same predictions: True" in out
    assert "Best model: PipelineModel of 2 stages" in out


def test_transfer_learning_fine_tunes_a_base_it_pretrained(run_example, tmp_path):
    out = run_example("transfer_learning.py", tmp_path, "--per-class", "12")
    assert "60 training images of 5 classes: 5, 6, 7, 8, 9" in out  # --quick keeps a given size
    tuned = float(re.search(r"fine-tuned from the base: test accuracy ([0-9.]+)", out).group(1))
    assert tuned >= 0.4  # five classes: chance is 0.2
    assert re.search(r"same network from random weights: test accuracy [0-9.]+", out)
    labelled = re.findall(r"^  \d+\.jpg: ([5-9])$", out, re.M)
    assert len(labelled) == 5
    assert (tmp_path / "transfer_learning_output" / "base.keras").is_file()
