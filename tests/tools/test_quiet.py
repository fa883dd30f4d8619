"""The start-up notices of TensorFlow and the JVM: hidden by default, shown with
TF_CPP_MIN_LOG_LEVEL=0 (the command's -v), never anything else hidden."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sparktf import _quiet
from sparktf.session import log4j_options

NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = "I0000 00:00:1795796134.237473   21345 port.cc:153] oneDNN custom operations are on."


@pytest.mark.parametrize(
    ("line", "level", "kept"),
    [
        (NOTICE, 2, False),
        (ONEDNN, 1, False),
        (ONEDNN, 0, True),
        (NOTICE, 0, True),
        ("W0000 00:00:1795796134.2 7 cuda_dnn.cc:8] no CUDA", 2, False),
        ("W0000 00:00:1795796134.2 7 cuda_dnn.cc:8] no CUDA", 1, True),
        ("E0000 00:00:1795796134.2 7 cuda_driver.cc:9] failed call", 2, True),
        ("To enable the following instructions: AVX2 FMA, in other operations, rebuild", 2, False),
        ("/x.py:3: UserWarning: something the user should see", 3, True),
        ("Traceback (most recent call last):", 3, True),
    ],
)
def test_which_loading_lines_are_kept(line, level, kept):
    assert _quiet.keep_tensorflow_line(line + "\n", level) is kept


def _import_in_a_fresh_process(level: str) -> str:
    code = (
        "import sys; from sparktf._quiet import import_tensorflow\n"
        "print('before', file=sys.stderr, flush=True)\n"
        "import_tensorflow()\n"
        "import warnings; warnings.warn('a Python warning is kept')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": level}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stderr


def test_tensorflow_loads_without_its_notices_and_shows_them_at_level_0():
    quiet = _import_in_a_fresh_process("2")
    assert "absl::InitializeLog" not in quiet and "oneDNN" not in quiet, quiet
    assert quiet.startswith("before\n") and "UserWarning: a Python warning is kept" in quiet
    loud = _import_in_a_fresh_process("0")  # what -v asks for
    assert NOTICE in loud and "oneDNN custom operations are on" in loud


def test_the_retracing_warning_is_dropped_and_other_tensorflow_warnings_kept(caplog):
    import logging

    _quiet.import_tensorflow()
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning(
            "5 out of the last 13 calls to <function f> triggered tf.function retracing."
        )
        logger.warning("a real TensorFlow warning")
    assert [r.getMessage() for r in caplog.records] == ["a real TensorFlow warning"]


def test_the_jvm_filter_drops_the_incubator_notice_only(capfd):
    program = (
        "import sys\n"
        "print('WARNING: Using incubator modules: jdk.incubator.vector', file=sys.stderr)\n"
        "print('12:00:00 WARN SparkContext: a real warning', file=sys.stderr)\n"
    )
    with _quiet.jvm_stderr_filtered():
        child = subprocess.Popen([sys.executable, "-c", program])  # like the JVM: inherits fd 2
    child.wait(timeout=60)
    _quiet._RELAYS[-1].wait(timeout=60)  # the filter ends when the child's stderr closes
    err = capfd.readouterr().err
    assert err == "12:00:00 WARN SparkContext: a real warning\n"


def test_the_jvm_filter_can_be_off(capfd):
    with _quiet.jvm_stderr_filtered(enabled=False):
        subprocess.run(
            [sys.executable, "-c", "import sys; print('WARNING: Using incubator modules: x', "
             "file=sys.stderr)"],
            check=True,
        )  # fmt: skip
    assert capfd.readouterr().err == "WARNING: Using incubator modules: x\n"


def test_log4j_settings_unless_the_user_has_their_own(monkeypatch, tmp_path):
    for name in ("PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    uri = f"file://{_quiet.LOG4J_CONFIG}"
    assert log4j_options(None) == f"-Dlog4j2.configurationFile={uri}"
    assert log4j_options({"spark.driver.extraJavaOptions": "-Xss4m"}) == (
        f"-Xss4m -Dlog4j2.configurationFile={uri}"
    )
    assert log4j_options({"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=x"}) is None
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.extraJavaOptions -Xss4m\n")
    assert log4j_options(None) is None  # a setting here would replace the user's options
    (tmp_path / "spark-defaults.conf").unlink()
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n")
    assert log4j_options(None) is None
    (tmp_path / "log4j2.properties").unlink()
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dlog4j.configurationFile=/etc/mine.xml")
    assert log4j_options(None) is None


def test_the_log4j_file_ships_with_the_package():
    with open(_quiet.LOG4J_CONFIG) as handle:
        text = handle.read()
    assert "rootLogger.level = warn" in text
    assert "org.apache.hadoop.util.NativeCodeLoader" in text
