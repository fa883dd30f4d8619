"""``sparktf tune``: on digits, by halving, on MNIST files and on Parquet, and its failures.

Commands run in this process and reuse the suite's SparkSession (``get_spark`` returns the
active session), each in an empty working folder of its own (``cwd``).
"""

from __future__ import annotations

import gzip
import os
import re
import struct

import numpy as np
import pandas as pd
import pytest
from cli_support import run

pytest_plugins = ("cli_fixtures",)
pytestmark = pytest.mark.usefixtures("cwd")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "a CrossValidator needs folds >= 2, got 1"),
        ({"validator": "kfold"}, "validator must be 'cv' or 'tvs', got 'kfold'"),
        ({"search": "bayes"}, "search must be 'grid' or 'random', got 'bayes'"),
    ],
)
def test_tune_classifier_checks_its_arguments_first(tmp_path, kwargs, message):
    from sparktf.workflow import tune_classifier

    with pytest.raises(ValueError, match=re.escape(message)):
        tune_classifier(None, str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


def test_tune_on_digits_writes_report_plot_and_best_model(spark, capsys, tmp_path):
    from sparktf import TFClassificationModel
    from sparktf.datasets import load_digits

    output = tmp_path / "tuned"
    code, out, err = run(
        capsys,
        "tune",
        "--hidden-layers", "16;32",
        "--learning-rates", "0.01,0.03",
        "--epochs", "3",
        "--folds", "2",
        "--limit", "600",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    training_rows = int(err.split("Training rows: ")[1].split()[0])
    assert 400 <= training_rows <= 600  # 600 sampled rows, about 20% held out for the test
    report = pd.read_csv(output / "report.csv")
    assert len(report) == 4
    assert sorted(report["hiddenLayers"].unique()) == ["[16]", "[32]"]
    assert sorted(report["learningRate"].unique()) == [0.01, 0.03]
    assert report["best"].sum() == 1 and sorted(report["rank"]) == [1, 2, 3, 4]
    assert (report["mean"] > 0.3).all()
    best_row = report[report["best"]].iloc[0]
    assert "Tuning report (accuracy, best first):" in out
    assert f"Best setting: hiddenLayers={best_row['hiddenLayers']}" in out
    assert "Test accuracy of the best model: " in out
    assert "4 settings x 2 folds = 8 trainings" in err  # progress on stderr

    assert (output / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (output / "best_model.keras").read_bytes()[:2] == b"PK"  # a .keras zip
    model = TFClassificationModel.load(str(output / "best_model"))
    assert model.getHiddenLayers() == [int(v) for v in best_row["hiddenLayers"][1:-1].split(",")]
    assert model.getLearningRate() == best_row["learningRate"]
    predictions = model.transform(load_digits(spark).limit(20)).select("prediction").collect()
    assert len(predictions) == 20


def test_tune_by_halving_reports_rungs_and_resumes(spark, capsys, tmp_path):
    checkpoints = tmp_path / "ck"
    argv = [
        "tune",
        "--halving", "2",
        "--checkpoint-dir", str(checkpoints),
        "--validator", "tvs",
        "--hidden-layers", "16",
        "--learning-rates", "0.0001,0.01,0.03",
        "--epochs", "4",
        "--limit", "600",
        "--output", str(tmp_path / "tuned"),
    ]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "3 settings on one train/validation split, halving by 2: " in err
    report = pd.read_csv(tmp_path / "tuned" / "report.csv")
    assert sorted(report["rung"]) == [1, 2, 2]  # 3 settings x 2 epochs, then 2 x 4
    assert report.loc[report["best"], "rung"].tolist() == [2]
    assert "Test accuracy of the best model: " in out
    assert "HalvingTrainValidationSplit rung 1 of 2 (2 epochs)" in err  # its progress lines
    trials = sorted(p.name for p in (checkpoints / "trials").glob("*.json"))
    code, _, err = run(capsys, *argv, "--overwrite")  # the same search again: read back
    assert code == 0, err
    assert "rung 1 of 2" not in err and "refit of the best setting" in err
    assert sorted(p.name for p in (checkpoints / "trials").glob("*.json")) == trials
    assert (
        pd.read_csv(tmp_path / "tuned" / "report.csv")["mean"].tolist() == report["mean"].tolist()
    )


def _write_idx(path, array: np.ndarray, gzipped: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if gzipped:
        path = f"{path}.gz"
        data = gzip.compress(data)
    with open(path, "wb") as handle:
        handle.write(data)


def fake_mnist(folder, train: int = 80, test: int = 20) -> None:
    """Tiny MNIST-format files: class k has a bright 7x7 square in position k of a 28x28 image."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for split, n, gzipped in (("train", train, True), ("t10k", test, False)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, size=(n, 28, 28))
        for i, k in enumerate(labels):
            row, col = divmod(int(k), 4)
            images[i, row * 7 : row * 7 + 7, col * 7 : col * 7 + 7] = 255
        _write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte"), images, gzipped)
        _write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte"), labels, gzipped)


def test_tune_random_search_on_mnist_files(spark, capsys, tmp_path):
    fake_mnist(tmp_path / "mnist")
    output = tmp_path / "out"
    code, out, err = run(
        capsys,
        "tune",
        "--mnist", str(tmp_path / "mnist"),
        "--search", "random",
        "--samples", "2",
        "--validator", "tvs",
        "--hidden-layers", "16",
        "--learning-rates", "0.003,0.03",
        "--epochs", "5",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    assert "Reading MNIST from" in err
    assert "Training rows: 80" in err
    report = pd.read_csv(output / "report.csv")
    assert len(report) == 2
    assert report["learningRate"].between(0.003, 0.03).all()
    assert report["learningRate"].nunique() == 2
    assert report["std"].isna().all()  # TrainValidationSplit: one split, no std
    accuracy = float(out.split("Test accuracy of the best model: ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert (output / "best_model" / "metadata").is_dir()


def test_tune_failing_in_training_leaves_no_output(spark, capsys, tmp_path):
    path = str(tmp_path / "data.parquet")
    spark.createDataFrame([([1.0, 2.0], "cat")] * 4, ["features", "label"]).write.parquet(path)
    output = tmp_path / "out"
    code, _, err = run(
        capsys, "tune", "-q", "--parquet", path, "--test-fraction", "0", "--folds", "2",
        "--output", str(output),
    )  # fmt: skip
    assert code == 1
    assert "Column 'label' (labelCol) of TFClassifier must be numeric" in err
    assert not output.exists()


def test_tune_parquet_with_wrong_column(spark, capsys, tmp_path):
    path = str(tmp_path / "data.parquet")
    spark.createDataFrame([(1.0, 0.0)], ["x", "y"]).write.parquet(path)
    code, _, err = run(capsys, "tune", "-q", "--parquet", path, "--features-col", "pixels")
    assert code == 2
    assert err == (
        f"sparktf tune: error: --parquet {path}: column(s) ['pixels', 'label'] not found; the "
        "columns are ['x', 'y'] (choose with --features-col / --label-col)\n"
    )


def test_tune_quick_names_its_progress(spark, capsys, tmp_path):
    """In this process, on the suite's session: a fresh command's quiet start-up is the demo
    subprocess's (test_cli_demo.py's test_demo_quick_tunes_reports_and_labels_images_quietly),
    which tunes too."""
    output = tmp_path / "tuned"
    code, _, err = run(capsys, "tune", "--quick", "--limit", "600", "--output", str(output))
    assert code == 0, err
    assert "fold 1 of 2: 4/4 models trained" in err and "fold 2 of 2: 4/4 models trained" in err
    trials = [line for line in err.splitlines() if "train accuracy" in line]
    # every trial once: 4 settings x 2 folds, then the refit; named by what varies
    assert len(trials) == 9, err
    assert sum(" fold 1 of 2: hiddenLayers=" in line for line in trials) == 4
    assert " refit of the best setting: train accuracy " in trials[-1]
    assert "#0" not in err and "fitMultiple" not in err
    report = pd.read_csv(output / "report.csv")
    assert list(report["rank"]) == [1, 2, 3, 4]  # best first, as printed
    assert all(round(v, 4) == v for v in report["mean"]), report
    assert all(round(v, 1) == v for v in report["seconds"]), report
