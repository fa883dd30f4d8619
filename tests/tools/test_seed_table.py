"""benchmarks/seed_table.py, the seed experiment's table: its --quick mode on generated MNIST files,
and (when the real MNIST files are beside the project) one fit at full size."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from test_datasets import write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL_MNIST = os.path.join(ROOT, "..", "shared", "data", "mnist")


def _seed_table():
    spec = importlib.util.spec_from_file_location(
        "seed_table", os.path.join(ROOT, "benchmarks", "seed_table.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digit_mnist(directory, n_train: int, n_test: int) -> None:
    """MNIST-format files made from scikit-learn's digits: 8x8 scaled to 28x28, 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # 24x24
    images = np.pad(images * 15.9, ((0, 0), (2, 2), (2, 2))).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    train, test = order[:n_train], order[n_train : n_train + n_test]
    for stem, values in (
        ("train-images-idx3-ubyte.gz", images[train]),
        ("train-labels-idx1-ubyte.gz", labels[train]),
        ("t10k-images-idx3-ubyte.gz", images[test]),
        ("t10k-labels-idx1-ubyte.gz", labels[test]),
    ):
        write_idx(directory / stem, values, gzipped=True)


def test_seed_table_quick_run_writes_table_figure_and_results(spark, tmp_path, capsys):
    seed_table = _seed_table()
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    digit_mnist(mnist, n_train=seed_table.QUICK_ROWS, n_test=300)
    results = seed_table.run(str(mnist), str(tmp_path / "out"), quick=True)
    out = capsys.readouterr().out
    default = results["default"]["test_accuracy"]
    tuned = results["search"]["tuned_test_accuracy"]
    assert f"| default setting, test accuracy | 99.20% | {default:.2%} |" in out
    assert f"| tuned (best of the search, refit), test accuracy | 99.47% | {tuned:.2%} |" in out
    assert results["rows"] == {"train": seed_table.QUICK_ROWS, "test": 300}
    # Chance is 10%; even a three-epoch network on 600 images learns these digits.
    assert results["default"]["test_accuracy"] > 0.3
    assert results["search"]["tuned_test_accuracy"] > 0.3
    trials = results["search"]["trials"]
    assert len(trials) == 4
    assert all(0.0 <= t["test_error"] <= 1.0 for t in trials)
    best = max(trials, key=lambda t: t["validation_accuracy"])
    assert results["search"]["best"]["learningRate"] == best["learningRate"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["search"]["best"] == results["search"]["best"]
    assert (tmp_path / "out" / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(
    not os.path.isdir(REAL_MNIST),
    reason=f"the real MNIST files are not in {REAL_MNIST} (a clone has no data of its own; "
    "the quick run above covers the code on generated files)",
)
def test_real_mnist_trains_at_full_size_in_the_default_session(spark):
    """60,000 real images through the whole data path (load, check, collect, broadcast, train)."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier
    from sparktf.datasets import load_mnist

    train = load_mnist(spark, REAL_MNIST, "train")
    test = load_mnist(spark, REAL_MNIST, "test").limit(2000)
    model = TFClassifier(hiddenLayers=[64], epochs=1, batchSize=128).fit(train)
    assert model.numFeatures == 784 and model.numClasses == 10
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        model.transform(test)
    )
    assert accuracy > 0.9
