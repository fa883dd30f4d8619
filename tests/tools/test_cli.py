"""The ``sparktf`` command: argument errors, tune on digits and on MNIST files, label images.

Commands run in this process through ``main([...])`` and reuse the suite's SparkSession
(``get_spark`` returns the active session). Every test runs in an empty folder of its own (the
``cwd`` fixture), never in the repository root: the commands' default ``--output`` folders are
relative, and what a user or an earlier run left there must change no outcome.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparktf
from sparktf.cli import layer_lists, main

SKLEARN_IMAGES = os.path.join(os.path.dirname(__import__("sklearn").__file__), "datasets", "images")


@pytest.fixture(autouse=True)
def cwd(tmp_path_factory, monkeypatch):
    """An empty working folder for the test (and the commands it starts), apart from its
    ``tmp_path``."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- arguments and errors (no Spark job) -------------------------------------------------------


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert (code, out) == (0, f"sparktf {sparktf.__version__}\n")


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2
    assert "usage: sparktf" in out
    assert "{demo,tune,label}" not in out  # the metavar hides the raw choices
    for command in ("demo", "tune", "label"):
        assert f"    {command}" in out


@pytest.mark.parametrize("command", ["demo", "tune", "label"])
def test_help_of_every_command(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: sparktf {command}")
    assert "--master" in out and "--remote" in out and "--traceback" in out


@pytest.mark.parametrize("command", [[], ["demo"], ["tune"], ["label"]])
def test_help_states_each_default_once(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    # one entry per option: from its flags to the next option (or section)
    entries = re.split(r"\n(?=  -|\n)", out.split("options:", 1)[1])
    for entry in entries:
        text = " ".join(entry.split())
        assert text.count("(default:") <= 1, text
        assert "(default: None)" not in text and "(default: [])" not in text, text
        assert "(default: False)" not in text, text
    if command == ["tune"]:
        assert "(default: '32;64')" in " ".join(out.split())
        assert re.search(r"--epochs N,N\s+numbers of epochs to try \(default: 10\)", out)


def test_required_options_look_required_in_the_usage(capsys):
    _, out, _ = run(capsys, "label", "--help")
    usage = " ".join(out.split("\n\n")[0].split())
    assert "--model PATH" in usage and "[--model PATH" not in usage
    assert "--labels FILE" in usage and "[--labels" not in usage


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["tune", "--hidden-layers", "64;a"],
            "argument --hidden-layers: expected comma-separated integers, got 'a'",
        ),
        (
            ["tune", "--hidden-layers", "64;0"],
            "argument --hidden-layers: every value must be >= 1, got '0'",
        ),
        (
            ["tune", "--learning-rates", "0.01,0"],
            "argument --learning-rates: expected one or more numbers > 0, got '0.01,0'",
        ),
        (["tune", "--epochs", "x"], "argument --epochs: expected comma-separated integers"),
        (["tune", "--test-fraction", "1.5"], "expected a number in [0, 1), got 1.5"),
        (["tune", "--search", "bayes"], "argument --search: invalid choice: 'bayes'"),
        (["tune", "--mnist", "a", "--parquet", "b"], "not allowed with argument --mnist"),
        (["tune", "--halving", "3", "--epochs", "2,4"], "--halving needs one value of --epochs"),
        (["tune", "--checkpoint-dir", "ck"], "--checkpoint-dir and --trial-timeout need --halving"),
        (["tune", "--halving", "0"], "argument --halving: expected an integer >= 1, got 0"),
        (["label", "photos/"], "the following arguments are required: --model"),
        (["demo", "--images", "0"], "argument --images: expected an integer >= 1, got 0"),
        (
            ["demo", "--master", "local[1]", "--remote", "sc://localhost:15002"],
            "argument --remote: not allowed with argument --master",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["tune", "--bogus"], "unrecognized arguments: --bogus"),
        (["label", "photos/", "--model", "m", "--labels", "l", "-x"], "arguments: -x"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["tune", "--bogus"], "sparktf tune"),
        (["tune", "--epochs", "x"], "sparktf tune"),
        (["label", "photos/"], "sparktf label"),
        (["demo", "--images", "0"], "sparktf demo"),
        (["--bogus"], "sparktf"),
        (["frobnicate"], "sparktf"),
    ],
)
def test_usage_errors_are_one_line_of_the_subcommand(capsys, argv, prog):
    code, _, err = run(capsys, *argv)
    assert code == 2
    first, hint = err.splitlines()
    assert first.startswith(f"{prog}: error: ")
    assert hint == f"(see '{prog} --help')"
    assert "usage:" not in err


def test_the_exit_codes_in_the_docs_are_the_commands():
    from sparktf.cli import _console

    docs = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "cli.md")
    with open(docs) as handle:
        text = handle.read()
    table = text.split("## Exit codes and errors", 1)[1].split("\n\n")[1]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    documented = {int(code): when.strip() for code, when in rows}
    constants = {v for k, v in vars(_console).items() if k.startswith("EXIT_")}
    assert set(documented) == constants
    assert documented[_console.EXIT_OK].startswith("success")
    assert documented[_console.EXIT_ERROR].startswith("an error while running")
    assert documented[_console.EXIT_USAGE].startswith("a usage error")
    assert "Ctrl-C" in documented[_console.EXIT_INTERRUPTED]


def test_ctrl_c_exits_130_in_one_line(capsys, monkeypatch, tmp_path):
    import sparktf.session

    def get_spark(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sparktf.session, "get_spark", get_spark)
    code, _, err = run(capsys, "demo", "--output", str(tmp_path / "out"))
    assert (code, err.splitlines()[-1]) == (130, "sparktf demo: interrupted")


def test_layer_lists():
    assert layer_lists("64;128,64") == [[64], [128, 64]]
    assert layer_lists("none;32") == [[], [32]]


def test_missing_paths_are_usage_errors(capsys, tmp_path):
    missing = str(tmp_path / "nope")
    code, _, err = run(capsys, "tune", "--mnist", missing)
    assert (code, err) == (2, f"sparktf tune: error: --mnist: folder not found: {missing}\n")
    code, _, err = run(capsys, "tune", "--parquet", missing)
    assert (code, err) == (
        2,
        f"sparktf tune: error: --parquet: no such file or folder: {missing}\n",
    )
    code, _, err = run(capsys, "label", "x", "--model", missing, "--labels", missing)
    assert err == f"sparktf label: error: --model: no such file or folder: {missing}\n"
    assert code == 2


def test_graphdef_needs_tensor_names(capsys, tmp_path):
    model = tmp_path / "frozen.pb"
    model.write_bytes(b"\x00")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\n")
    code, _, err = run(
        capsys, "label", str(tmp_path), "--model", str(model), "--labels", str(labels)
    )
    assert code == 2
    assert (
        err == "sparktf label: error: a frozen GraphDef needs --input-tensor and --output-tensor\n"
    )


def test_bad_conf_is_a_usage_error(capsys):
    code, _, err = run(capsys, "demo", "--conf", "spark.task.cpus")
    assert (code, err) == (
        2,
        "sparktf demo: error: --conf expects KEY=VALUE, got 'spark.task.cpus'\n",
    )


def _no_spark(monkeypatch):
    import sparktf.session

    def get_spark(**kwargs):
        raise RuntimeError("Spark was started")

    monkeypatch.setattr(sparktf.session, "get_spark", get_spark)


@pytest.fixture
def crowded_cwd(cwd):
    """The working folder after ``sparktf demo``, ``tune`` and ``label`` ran there: their
    default --output folders exist and hold files."""
    for name in ("sparktf-demo-output", "sparktf-tune-output", "sparktf-labels"):
        (cwd / name).mkdir()
        (cwd / name / "report.csv").write_text("earlier results\n")
    return cwd


_BAD_CONF = "--conf expects KEY=VALUE, got 'spark.task.cpus'"
_BAD_MASTER = "--master: Not a Spark master URL: 'local[two]'. Use local, local[N], "


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--conf", "spark.task.cpus"], _BAD_CONF),
        (["tune", "--conf", "spark.task.cpus"], _BAD_CONF),
        (["tune", "--mnist", "missing", "--conf", "spark.task.cpus"], _BAD_CONF),
        (["tune", "--output", "a-file", "--conf", "spark.task.cpus"], _BAD_CONF),
        (["label", "missing", "--model", "m", "--labels", "l", "--conf", "spark.task.cpus"],
         _BAD_CONF),
        (["demo", "--master", "local[two]"], _BAD_MASTER),
        (["tune", "--parquet", "missing", "--master", "local[two]"], _BAD_MASTER),
        (["label", "missing", "--model", "m", "--labels", "l", "--master", "local[two]"],
         _BAD_MASTER),
        (["tune", "--mnist", "missing", "--folds", "1"],
         "--folds must be >= 2 for a CrossValidator, got 1"),
        (["tune", "--parquet", "missing", "--conv-layers", "32"],
         "--conv-layers on --parquet data needs --input-shape"),
        (["label", "missing", "--model", "m", "--labels", "l", "--model-format", "graphdef"],
         "a frozen GraphDef needs --input-tensor and --output-tensor"),
    ],
)  # fmt: skip
def test_the_syntax_of_every_argument_is_checked_before_any_path(
    capsys, monkeypatch, crowded_cwd, argv, message
):
    """A malformed argument is a usage error of the command line itself, reported whatever the
    paths it names and the default --output folder hold (here: paths that do not exist, a file
    as --output, and the default --output folders holding files)."""
    _no_spark(monkeypatch)
    (crowded_cwd / "a-file").write_text("")
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    first = err.splitlines()[0]
    assert first.startswith(f"sparktf {argv[0]}: error: {message}"), err
    assert "Spark was started" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["label", "missing", "--model", ".", "--labels", "."],
         "no such file or folder: missing"),
        (["label", "missing/*.jpg", "--model", ".", "--labels", "."],
         "no file matches missing/*.jpg"),
        (["label", "missing", "--image-col", "bytes", "--model", ".", "--labels", "."],
         "IMAGES: no such file or folder: missing"),
        (["label", ".", "--model", ".", "--labels", ".", "--output", "sparktf-labels"],
         "--output sparktf-labels already exists (add --overwrite to replace it)"),
        (["tune", "--output", "sparktf-demo-output"],
         "--output sparktf-demo-output is not empty (add --overwrite to write into it)"),
        (["label", "missing", "--image-col", "bytes", "--by-path", "--model", ".",
          "--labels", "."],
         "--by-path feeds the image files' paths to a model that takes pixels; with "
         "--image-col the images are bytes in a Parquet column (drop --by-path)"),
        (["label", "s3a://bucket/photos", "--model", ".", "--labels", ".", "--by-path"],
         "--by-path: the Python workers open the files through TensorFlow, which reads no S3 "
         "paths; drop --by-path to read them through Spark"),
        (["label", ".", "--model", ".", "--labels", ".", "--model-format", "graphdef",
          "--input-tensor", "a:0", "--output-tensor", "b:0", "--by-path"],
         "--by-path feeds the image files' paths to a model that takes pixels; a frozen "
         "GraphDef is fed the encoded bytes (drop --by-path)"),
    ],
)  # fmt: skip
def test_paths_and_folders_are_checked_before_spark_starts(
    capsys, monkeypatch, crowded_cwd, argv, message
):
    _no_spark(monkeypatch)
    code, _, err = run(capsys, *argv)
    assert (code, err) == (2, f"sparktf {argv[0]}: error: {message}\n")


@pytest.mark.parametrize("command", ["demo", "tune"])
def test_a_default_output_left_by_an_earlier_run_is_refused_unless_overwrite(
    capsys, monkeypatch, crowded_cwd, command
):
    _no_spark(monkeypatch)
    code, _, err = run(capsys, command)
    assert (code, err) == (
        2,
        f"sparktf {command}: error: --output sparktf-{command}-output is not empty (add "
        "--overwrite to write into it)\n",
    )
    code, _, err = run(capsys, command, "--overwrite")
    assert code == 1 and "Spark was started" in err, err


@pytest.mark.parametrize("command", ["tune", "demo"])
def test_an_output_with_files_is_refused_before_spark_starts(
    capsys, monkeypatch, tmp_path, command
):
    _no_spark(monkeypatch)
    output = tmp_path / "out"
    output.mkdir()
    (output / "report.csv").write_text("earlier results\n")
    code, _, err = run(capsys, command, "--output", str(output))
    assert (code, err) == (
        2,
        f"sparktf {command}: error: --output {output} is not empty (add --overwrite to write "
        "into it)\n",
    )
    assert (output / "report.csv").read_text() == "earlier results\n"
    # with --overwrite, and for an empty folder, the command goes on (here: to starting Spark)
    for argv in (["--output", str(output), "--overwrite"], ["--output", str(tmp_path / "empty")]):
        (tmp_path / "empty").mkdir(exist_ok=True)
        code, _, err = run(capsys, command, *argv)
        assert code == 1 and "Spark was started" in err, err


def test_an_output_that_is_a_file_is_refused(capsys, monkeypatch, tmp_path):
    _no_spark(monkeypatch)
    (tmp_path / "out").write_text("")
    code, _, err = run(capsys, "tune", "--output", str(tmp_path / "out"), "--overwrite")
    assert (code, err) == (
        2,
        f"sparktf tune: error: --output {tmp_path / 'out'} is a file, not a folder\n",
    )


class _FakeFrame:
    columns = ["features", "label"]

    def randomSplit(self, weights, seed):
        return self, self

    def cache(self):
        return self

    def count(self):
        return 10


def _failing_tune(monkeypatch):
    """``sparktf tune`` on fake data whose tuning writes a report into --output, then fails."""
    import sparktf.cli.tune
    import sparktf.datasets

    def tune_classifier(train, output, **kwargs):
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "report.csv"), "w") as handle:
            handle.write("half")
        raise RuntimeError("training failed")

    monkeypatch.setattr(sparktf.cli.tune, "start_spark", lambda args, console: None)
    monkeypatch.setattr(sparktf.datasets, "load_digits", lambda spark: _FakeFrame())
    monkeypatch.setattr(sparktf.cli.tune, "tune_classifier", tune_classifier)


def test_a_failed_tune_leaves_no_output_folder(capsys, monkeypatch, tmp_path):
    _failing_tune(monkeypatch)
    output = tmp_path / "out"
    code, _, err = run(capsys, "tune", "-q", "--output", str(output))
    assert (code, err.splitlines()[0]) == (1, "sparktf tune: error: training failed")
    assert not output.exists()


def test_a_failed_tune_removes_only_what_it_wrote(capsys, monkeypatch, tmp_path):
    _failing_tune(monkeypatch)
    (tmp_path / "notes.txt").write_text("mine")
    code, _, _ = run(capsys, "tune", "-q", "--output", str(tmp_path), "--overwrite")
    assert code == 1
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_no_java_is_a_clear_runtime_error(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(capsys, "demo", "-q", "--quick", "--output", str(tmp_path / "out"))
    assert code == 1
    assert err.startswith("sparktf demo: error: Spark needs a Java runtime")
    assert "JAVA_HOME is not set and 'java' is not on PATH" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["demo", "tune"])
def test_remote_goes_to_get_spark(capsys, monkeypatch, tmp_path, command):
    import sparktf.session

    calls = []

    def get_spark(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("no Spark Connect server at sc://spark.example:15002")

    monkeypatch.setattr(sparktf.session, "get_spark", get_spark)
    code, _, err = run(
        capsys, command, "--remote", "sc://spark.example:15002", "--conf", "spark.x=1",
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 1
    assert calls == [
        {
            "master": None,
            "remote": "sc://spark.example:15002",
            "app_name": f"sparktf {command}",
            "conf": {"spark.x": "1"},
            "log_level": "WARN",
            "startup_logs": False,
        }
    ]
    assert "Starting Spark (Spark Connect sc://spark.example:15002)" in err
    assert f"sparktf {command}: error: no Spark Connect server at sc://" in err


@pytest.mark.parametrize(
    ("flag", "log_level", "startup_logs", "tf_level"),
    [("-q", "ERROR", False, "2"), ("-v", "WARN", True, "0"), ("--verbose", "WARN", True, "0")],
)
def test_quiet_and_verbose_reach_spark_and_tensorflow(
    capsys, monkeypatch, tmp_path, flag, log_level, startup_logs, tf_level
):
    import sparktf.session

    calls = []

    def get_spark(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(sparktf.session, "get_spark", get_spark)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # restored after the test
    code, _, _ = run(capsys, "tune", flag, "--output", str(tmp_path / "out"))
    assert code == 1
    assert (calls[0]["log_level"], calls[0]["startup_logs"]) == (log_level, startup_logs)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == tf_level  # set before TensorFlow loads


def test_quiet_and_verbose_exclude_each_other(capsys):
    code, _, err = run(capsys, "tune", "-q", "-v")
    assert code == 2
    assert "argument -v/--verbose: not allowed with argument -q/--quiet" in err


def test_import_does_not_load_tensorflow_or_spark():
    code = "import sys, sparktf.cli; print('tensorflow' in sys.modules, 'pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_python_dash_m_runs_the_command():
    out = subprocess.run(
        [sys.executable, "-m", "sparktf", "tune", "--folds", "many"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "argument --folds: expected an integer, got 'many'" in out.stderr


# -- tune --------------------------------------------------------------------------------------


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


_FRAME = (
    'Traceback (most recent call last):\n  File "w.py", line 3, in f\n    raise e\n    ^^^^^^^\n'
)
_KERAS = "ValueError: bad input:\n  • inputs=tf.Tensor(shape=(1,))\n  • mask=None"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # classic pyspark
        ("An exception was thrown from the Python worker:\n" + _FRAME + "ValueError: bad row",
         "bad row"),
        # Spark Connect: the traceback starts mid-line and a SQLSTATE line ends it
        ("\n  An exception was thrown from the Python worker. Please see the stack trace below."
         "\n[PYTHON_EXCEPTION] An exception was thrown from the Python worker: " + _FRAME
         + _KERAS + "\n SQLSTATE: 38000",
         "bad input:\n  • inputs=tf.Tensor(shape=(1,))\n  • mask=None"),
        # a chained error: the last one is shown; a type that is not plain keeps its name
        ("An exception was thrown from the Python worker:\n" + _FRAME + "KeyError: 'a'\n\n"
         "During handling of the above exception, another exception occurred:\n\n" + _FRAME
         + "tensorflow.errors.InvalidArgumentError: no kernel",
         "tensorflow.errors.InvalidArgumentError: no kernel"),
        # the JVM's stack trace after the Python one is left out
        ("An exception was thrown from the Python worker:\n" + _FRAME + "OSError: disk full\n"
         "\nJVM stacktrace:\norg.apache.spark.api.python.PythonException: ...\n\tat x.y(z)",
         "disk full"),
        # no traceback at all: the last line
        ("An exception was thrown from the Python worker:\nthe worker crashed",
         "the worker crashed"),
    ],
)  # fmt: skip
def test_a_python_workers_error_is_shown_by_its_own_message(text, shown):
    from sparktf.cli._console import error_message

    python_exception = type("PythonException", (Exception,), {})
    assert error_message(python_exception(text)) == shown


# -- label -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """A Keras file: (16, 16, 3) in [0, 1] -> softmax over (dark, bright, middle)."""
    import keras

    folder = tmp_path_factory.mktemp("model")
    image = keras.Input(shape=(16, 16, 3))
    mean = keras.layers.GlobalAveragePooling2D()(image)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(image, dense(mean))
    # logits: dark = -10 m, bright = 10 m - 5, middle = 0 (for the per-channel mean m)
    dense.set_weights(
        [np.array([[-10, 10, 0]] * 3, dtype=np.float32) / 3, np.array([0, -5, 0], np.float32)]
    )
    path = folder / "colour.keras"
    model.save(path)
    labels = folder / "labels.txt"
    labels.write_text("dark\nbright\nmiddle\n")
    return str(path), str(labels)


def test_label_sklearn_photos_to_parquet(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    output = tmp_path / "labels"
    code, out, err = run(
        capsys,
        "label", os.path.join(SKLEARN_IMAGES, "*.jpg"),
        "--model", model,
        "--labels", labels,
        "--top-k", "2",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    rows = spark.read.parquet(str(output)).orderBy("path").collect()
    assert [os.path.basename(r["path"]) for r in rows] == ["china.jpg", "flower.jpg"]
    for row in rows:
        assert len(row["topK"]) == 2
        assert {e["label"] for e in row["topK"]} <= {"dark", "bright", "middle"}
        assert row["topK"][0]["score"] >= row["topK"][1]["score"]
        assert len(row["scores"]) == 3 and abs(sum(row["scores"]) - 1) < 1e-4
    assert "Wrote 2 rows to" in out
    assert "china.jpg: " in out and "flower.jpg: " in out


def test_label_decodes_jpegs_at_a_reduced_scale_unless_full_decode_and_can_freeze(
    spark, capsys, tmp_path, colour_model
):
    import keras

    from sparktf.image import decode_image

    model, labels = colour_model
    network = keras.saving.load_model(model)
    with open(os.path.join(SKLEARN_IMAGES, "china.jpg"), "rb") as handle:
        china = handle.read()
    for flags, scaled in (((), True), (("--full-decode",), False), (("--freeze",), True)):
        output = tmp_path / f"labels-{len(flags) and flags[0]}"
        code, _, err = run(
            capsys,
            "label", os.path.join(SKLEARN_IMAGES, "china.jpg"),
            "--model", model, "--labels", labels, "--output", str(output), *flags,
        )  # fmt: skip
        assert code == 0, err
        (row,) = spark.read.parquet(str(output)).collect()
        pixels = decode_image(china, (16, 16), scaled=scaled).astype(np.float32) / 255.0
        expected = network(pixels[None]).numpy()[0]
        np.testing.assert_allclose(row["scores"], expected, rtol=1e-5, atol=1e-6)


def test_label_by_path_reads_the_files_in_the_workers_with_the_same_scores(
    spark, capsys, tmp_path, colour_model
):
    model, labels = colour_model
    scores = {}
    for flags in ((), ("--by-path",)):
        output = tmp_path / f"labels{len(flags)}"
        argv = ["label", SKLEARN_IMAGES, "--model", model, "--labels", labels, *flags]
        code, out, err = run(capsys, *argv, "--output", str(output))
        assert code == 0, err
        assert "Wrote 2 rows to" in out
        table = spark.read.parquet(str(output)).orderBy("path").collect()
        assert [os.path.basename(r["path"]) for r in table] == ["china.jpg", "flower.jpg"]
        scores[flags] = {r["path"]: r["scores"] for r in table}
    assert scores[()].keys() == scores[("--by-path",)].keys()
    for path, expected in scores[()].items():
        np.testing.assert_allclose(scores[("--by-path",)][path], expected, rtol=1e-6)


def test_label_by_path_names_a_file_that_cannot_be_read(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(os.path.join(SKLEARN_IMAGES, "china.jpg"), folder / "china.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    argv = ["label", str(folder), "--model", model, "--labels", labels, "--by-path"]
    code, _, err = run(capsys, *argv, "--output", str(tmp_path / "out"))
    assert code == 1
    # the worker's own message, not Spark's first line ("An exception was thrown ...")
    message = err.splitlines()[-2]
    # the input is the path column: the worker opened the file itself
    prefix = "sparktf label: error: TFGraphTransformer cannot use the input ('path') of the row"
    assert message.startswith(prefix), err
    assert f"with path 'file:{folder / 'broken.jpg'}': cannot decode image" in message
    assert message.endswith("image file (12 bytes). Add --skip-invalid to drop such images.")
    code, out, err = run(capsys, *argv, "--skip-invalid", "--output", str(tmp_path / "kept"))
    assert code == 0, err
    (row,) = spark.read.parquet(str(tmp_path / "kept")).collect()
    assert os.path.basename(row["path"]) == "china.jpg"
    assert "Wrote 1 rows to" in out
    assert "Skipped 1 images that could not be read or decoded" in out
    os.remove(folder / "china.jpg")
    code, out, err = run(capsys, *argv, "--skip-invalid", "--output", str(tmp_path / "none"))
    assert code == 1
    assert err.splitlines()[-2] == (
        "sparktf label: error: none of the 1 images could be read or decoded (--skip-invalid "
        "dropped them all); run without --skip-invalid to see the first one's error"
    )


def test_label_packs_small_image_files_into_fewer_tasks_and_leaves_the_session_as_it_was(
    spark, capsys, tmp_path, colour_model
):
    from PIL import Image

    model, labels = colour_model
    folder = tmp_path / "small"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "0.png")
    for i in range(1, 200):
        shutil.copy(folder / "0.png", folder / f"{i}.png")
    key = "spark.sql.files.openCostInBytes"
    cores = spark.sparkContext.defaultParallelism
    assert spark.conf.get(key, None) is None
    argv = ["label", str(folder), "--model", model, "--labels", labels, "--show", "0"]

    def tasks(output: str) -> int:  # one Parquet file per task of the labelling job
        code, out, err = run(capsys, *argv, "--output", output)
        assert code == 0 and "Wrote 200 rows" in out, err
        return len(glob.glob(os.path.join(output, "*.parquet")))

    packed = tasks(str(tmp_path / "packed"))
    assert spark.conf.get(key, None) is None  # left as it was
    spark.conf.set(key, "4194304")  # set by the user (Spark's default): the command keeps it
    try:
        unpacked = tasks(str(tmp_path / "unpacked"))
        assert spark.conf.get(key) == "4194304"
    finally:
        spark.conf.unset(key)
    assert packed <= cores < unpacked


def test_label_with_the_flat_network_of_tune_points_to_the_image_model(spark, capsys, tmp_path):
    import keras

    flat = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(10)])
    flat.save(tmp_path / "best_model.keras")
    (tmp_path / "labels.txt").write_text("".join(f"{d}\n" for d in range(10)))
    code, _, err = run(
        capsys,
        "label", SKLEARN_IMAGES,
        "--model", str(tmp_path / "best_model.keras"),
        "--labels", str(tmp_path / "labels.txt"),
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"sparktf label: error: --model {tmp_path / 'best_model.keras'} ")
    assert "takes flat feature vectors (input shape [None, 64]), not images" in message
    assert "digits_image_model.keras that 'sparktf demo' writes" in message
    assert not (tmp_path / "out").exists()


def test_label_folder_to_csv_and_overwrite(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    output = tmp_path / "labels_csv"
    argv = ["label", SKLEARN_IMAGES, "--model", model, "--labels", labels, "--top-k", "3"]
    code, _, err = run(capsys, *argv, "--format", "csv", "--output", str(output))
    assert code == 0, err
    table = spark.read.option("header", "true").csv(str(output)).orderBy("path").toPandas()
    assert len(table) == 2  # README.txt and __init__.py in the folder are not images
    for text in table["topK"]:
        entries = [entry.split(":") for entry in text.split(";")]
        assert sorted(label for label, _ in entries) == ["bright", "dark", "middle"]
        assert all(0.0 <= float(score) <= 1.0 for _, score in entries)
    code, _, err = run(capsys, *argv, "--output", str(output))
    assert code == 2
    assert err == (
        f"sparktf label: error: --output {output} already exists (add --overwrite to replace it)\n"
    )


def test_label_parquet_of_image_bytes(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    source = str(tmp_path / "images.parquet")
    rows = []
    for name in ("china.jpg", "flower.jpg"):
        with open(os.path.join(SKLEARN_IMAGES, name), "rb") as handle:
            rows.append((name, bytearray(handle.read())))
    spark.createDataFrame(rows, "name string, bytes binary").write.parquet(source)
    output = tmp_path / "out"
    code, _, err = run(
        capsys,
        "label", source,
        "--image-col", "bytes",
        "--path-col", "name",
        "--model", model,
        "--labels", labels,
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    result = spark.read.parquet(str(output)).orderBy("name").collect()
    assert [r["name"] for r in result] == ["china.jpg", "flower.jpg"]
    assert all(len(r["topK"]) == 3 for r in result)  # top-5 asked, 3 labels exist
    code, _, err = run(
        capsys, "label", source, "--image-col", "pixels", "--model", model, "--labels", labels,
        "--output", str(tmp_path / "other"),
    )  # fmt: skip
    assert code == 2
    assert "--image-col 'pixels' is not a column of" in err


def test_label_no_matching_images(capsys, monkeypatch, tmp_path, colour_model):
    _no_spark(monkeypatch)  # found before Spark starts
    model, labels = colour_model
    pattern = str(tmp_path / "*.png")
    code, _, err = run(
        capsys, "label", "-q", pattern, "--model", model, "--labels", labels,
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert (code, err) == (2, f"sparktf label: error: no file matches {pattern}\n")


# -- demo --------------------------------------------------------------------------------------


# What TensorFlow's C++ logging (absl), oneDNN, log4j and the JVM print when they start.
STARTUP_NOISE = re.compile(
    r"absl::InitializeLog|^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|oneDNN|cpu_feature_guard|"
    r"To enable the following instructions|log4j|Using incubator modules|"
    r"Setting default log level|To adjust logging level|NativeCodeLoader|loopback address"
)


def startup_noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if STARTUP_NOISE.search(line)]


def test_the_noise_pattern_finds_what_tensorflow_and_the_jvm_print():
    seen = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795796134.237473   21345 port.cc:153] oneDNN custom operations are on.
WARNING: Using incubator modules: jdk.incubator.vector
Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties
Setting default log level to "WARN".
To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).
26/11/27 16:17:03 WARN NativeCodeLoader: Unable to load native-hadoop library
26/11/27 16:17:03 WARN Utils: Your hostname, box, resolves to a loopback address: 127.0.1.1
16:17:17 fold 1 of 2: 4/4 models trained, 23.1s"""
    assert len(startup_noise(seen)) == 8


def test_demo_quick_tunes_reports_and_labels_images_quietly(spark, demo_run):
    """``sparktf demo --quick --images 4`` in a process of its own, as a user runs it (the
    ``demo_run`` job of tests/conftest.py, with TF_CPP_MIN_LOG_LEVEL unset)."""
    from PIL import Image

    output = Path(demo_run["output"])
    out, err = demo_run["stdout"], demo_run["stderr"]
    assert startup_noise(err) == [], err
    assert "Tuning report (accuracy, best first):" in out
    assert len(pd.read_csv(output / "report.csv")) == 4
    accuracy = float(out.split("Test accuracy of the best model: ")[1].split()[0])
    assert accuracy > 0.5
    assert (output / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert (output / "labels.txt").read_text() == "".join(f"{d}\n" for d in range(10))
    images = sorted((output / "images").glob("*.png"))
    assert len(images) == 4
    with Image.open(images[0]) as image:
        assert (image.mode, image.size) == ("L", (32, 32))
    labelled = spark.read.parquet(str(output / "labels.parquet")).collect()
    assert sorted(os.path.basename(r["path"]) for r in labelled) == [p.name for p in images]
    assert all(len(r["topK"]) == 3 for r in labelled)
    lines = [line for line in out.splitlines() if line.startswith("  digit_")]
    assert len(lines) == 4
    right = sum(
        line.split("true ")[1].split(",")[0] == line.split("top 3: ")[1].split(" ")[0]
        for line in lines
    )
    assert f"{right} of 4 images labelled correctly" in out


def test_tune_quick_names_its_progress(spark, capsys, tmp_path):
    """In this process, on the suite's session: a fresh command's quiet start-up is the demo
    subprocess's (test_demo_quick_tunes_reports_and_labels_images_quietly), which tunes too."""
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


def test_demo_image_model_reproduces_the_classifier(spark, tmp_path):
    """The wrapper the demo builds gives the classifier's own probabilities for a digit image."""
    import keras
    from PIL import Image

    from sparktf import TFClassifier
    from sparktf.cli import digit_image_model, write_digit_images
    from sparktf.datasets import load_digits

    df = load_digits(spark).limit(300)
    model = TFClassifier(hiddenLayers=[16], epochs=2, learningRate=0.01).fit(df)
    rows = df.orderBy("image_id").limit(3).collect()
    pixels = [r["features"].toArray() for r in rows]
    paths = write_digit_images(pixels, [int(r["label"]) for r in rows], str(tmp_path))
    wrapper = digit_image_model(model)

    images = np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in paths])
    assert images.shape == (3, 32, 32)
    got = wrapper.predict(images, verbose=0)
    # The PNG holds round(pixel * 255 / 16) as 8 bits; the wrapper maps it back to 0..16.
    stored = np.round(np.stack(pixels) * 255 / 16) * 16 / 255
    logits = model.keras_model().predict(stored.astype(np.float32), verbose=0)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_label_with_a_frozen_graphdef(spark, capsys, tmp_path, colour_model):
    """A frozen graph taking ONE encoded JPEG (like the 2016 Inception graph) and tensor names."""
    import tensorflow as tf

    _, labels = colour_model
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name="contents")
        image = tf.cast(tf.io.decode_jpeg(contents, channels=3), tf.float32) / 255.0
        mean = tf.reduce_mean(image, axis=[0, 1, 2])  # one number: overall brightness
        logits = tf.stack([-10.0 * mean, 10.0 * mean - 5.0, tf.constant(0.0)])
        tf.nn.softmax(tf.expand_dims(logits, 0), name="softmax")
    model = tmp_path / "frozen.pb"
    model.write_bytes(graph.as_graph_def().SerializeToString())
    output = tmp_path / "out"
    code, out, err = run(
        capsys,
        "label", SKLEARN_IMAGES,
        "--model", str(model),
        "--input-tensor", "contents:0",
        "--output-tensor", "softmax:0",
        "--labels", labels,
        "--top-k", "1",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    rows = spark.read.parquet(str(output)).orderBy("path").collect()
    for row, name in zip(rows, ("china.jpg", "flower.jpg"), strict=True):
        with open(os.path.join(SKLEARN_IMAGES, name), "rb") as handle:
            pixels = tf.io.decode_jpeg(handle.read(), channels=3).numpy() / 255.0
        m = float(pixels.mean())
        logits = np.array([-10 * m, 10 * m - 5, 0.0])
        expected = np.exp(logits) / np.exp(logits).sum()
        np.testing.assert_allclose(row["scores"], expected, rtol=1e-4)
        assert row["topK"][0]["label"] == ["dark", "bright", "middle"][int(np.argmax(expected))]
        assert f"{name}: {row['topK'][0]['label']} (" in out


def test_a_malformed_master_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "tune", "--master", "local[two]", "--output", str(tmp_path / "o"))
    assert code == 2
    assert "--master: Not a Spark master URL: 'local[two]'" in err
    assert "Traceback" not in err and "java" not in err.lower()


def test_an_unreachable_master_fails_fast_in_one_line(capsys, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master = f"spark://127.0.0.1:{port}"
    code, _, err = run(capsys, "tune", "--master", master, "--output", str(tmp_path / "o"))
    assert code == 1
    assert f"No Spark master answers at {master}" in err
    assert "Traceback" not in err and "java" not in err.lower()


def test_a_parquet_url_is_left_to_spark(tmp_path):
    """--parquet hdfs://... (as docs/cli.md shows) passes the path checks; Spark reads it."""
    from sparktf.cli._args import UsageError, require_path

    require_path("hdfs:///data/features.parquet", "--parquet")  # no local check of a URL
    with pytest.raises(UsageError, match="no such file or folder"):
        require_path(f"file://{tmp_path}/missing.parquet", "--parquet")
