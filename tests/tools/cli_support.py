"""What the tests of the ``sparktf`` command in tests/tools share (test_cli.py, test_cli_startup.py,
test_cli_tune.py, test_cli_label.py, test_cli_demo.py): a working folder of their own, running
the command in this process, and keeping Spark from starting.

Such a module imports the ``cwd`` fixture and uses it for every test
(``pytestmark = pytest.mark.usefixtures("cwd")``). It is not in a tests/tools/conftest.py: that
module would be imported as ``conftest`` in place of tests/conftest.py, from which test modules
collected after tests/tools import (tests/training/test_workers.py).
"""

from __future__ import annotations

import pytest

from sparktf.cli import main


@pytest.fixture
def cwd(tmp_path_factory, monkeypatch):
    """An empty working folder for the test (and the commands it starts), apart from its
    ``tmp_path``: the commands' default ``--output`` folders are relative, and what a user or an
    earlier run left in the folder the suite runs in must change no outcome."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``sparktf ARGV`` in this process: its exit code, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def no_spark(monkeypatch) -> None:
    """Starting Spark fails (``RuntimeError: Spark was started``) for the rest of the test."""
    import sparktf.session

    def get_spark(**kwargs):
        raise RuntimeError("Spark was started")

    monkeypatch.setattr(sparktf.session, "get_spark", get_spark)
