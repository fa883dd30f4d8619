"""The ``sparktf`` command line: arguments, help, usage errors, exit codes and error messages.

Commands run in this process through ``main([...])`` (``run`` of tests/tools/cli_support.py);
none gets as far as a Spark job. Every test of the command runs in an empty folder of its own
(the ``cwd`` fixture of tests/tools/cli_fixtures.py), never in the repository root: the
commands' default ``--output`` folders are relative, and what a user or an earlier run left
there must change no outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from cli_support import run

import sparktf
from sparktf.cli import layer_lists

pytest_plugins = ("cli_fixtures",)
pytestmark = pytest.mark.usefixtures("cwd")


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


def test_a_malformed_master_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "tune", "--master", "local[two]", "--output", str(tmp_path / "o"))
    assert code == 2
    assert "--master: Not a Spark master URL: 'local[two]'" in err
    assert "Traceback" not in err and "java" not in err.lower()


def test_quiet_and_verbose_exclude_each_other(capsys):
    code, _, err = run(capsys, "tune", "-q", "-v")
    assert code == 2
    assert "argument -v/--verbose: not allowed with argument -q/--quiet" in err


def test_a_parquet_url_is_left_to_spark(tmp_path):
    """--parquet hdfs://... (as docs/cli.md shows) passes the path checks; Spark reads it."""
    from sparktf.cli._args import UsageError, require_path

    require_path("hdfs:///data/features.parquet", "--parquet")  # no local check of a URL
    with pytest.raises(UsageError, match="no such file or folder"):
        require_path(f"file://{tmp_path}/missing.parquet", "--parquet")


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
