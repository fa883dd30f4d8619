"""What the tests of the ``sparktf`` command in tests/tools share (test_cli.py, test_cli_startup.py,
test_cli_tune.py, test_cli_label.py, test_cli_demo.py) besides their working folder
(cli_fixtures.py): running the command in this process, and keeping Spark from starting."""

from __future__ import annotations

from sparktf.cli import main


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
