"""What ``sparktf`` checks before Spark starts, the ``--output`` folder it refuses or cleans up,
and how it starts Spark: Java, ``--remote``, ``-q`` / ``-v``, an unreachable master.

Commands run in this process (``run`` of tests/tools/cli_support.py), most with Spark kept
from starting (``no_spark``), each in an empty working folder of its own (``cwd``).
"""

from __future__ import annotations

import os

import pytest
from cli_support import no_spark, run

pytest_plugins = ("cli_fixtures",)
pytestmark = pytest.mark.usefixtures("cwd")


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
    no_spark(monkeypatch)
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
    no_spark(monkeypatch)
    code, _, err = run(capsys, *argv)
    assert (code, err) == (2, f"sparktf {argv[0]}: error: {message}\n")


@pytest.mark.parametrize("command", ["demo", "tune"])
def test_a_default_output_left_by_an_earlier_run_is_refused_unless_overwrite(
    capsys, monkeypatch, crowded_cwd, command
):
    no_spark(monkeypatch)
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
    no_spark(monkeypatch)
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
    no_spark(monkeypatch)
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
