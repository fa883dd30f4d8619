"""A test run leaves the repository root as it found it (``conftest.RootGuard``): the commands,
examples and jobs the tests run write to folders of their own, so ``make demo`` then ``make test``
(or a second ``make test``) gives the same outcome as ``make test`` on a fresh clone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import ROOT, RootGuard


def _session() -> SimpleNamespace:
    plugins = SimpleNamespace(get_plugin=lambda name: None)
    return SimpleNamespace(
        exitstatus=pytest.ExitCode.OK, config=SimpleNamespace(pluginmanager=plugins)
    )


def test_a_run_that_adds_or_removes_an_entry_fails(tmp_path):
    (tmp_path / "README.md").write_text("")
    guard, session = RootGuard(tmp_path), _session()
    guard.pytest_sessionstart(session)
    (tmp_path / "sparktf-demo-output").mkdir()
    (tmp_path / "README.md").unlink()
    guard.pytest_sessionfinish(session)
    assert guard.changes() == ["added sparktf-demo-output", "removed README.md"]
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED


def test_the_environment_and_the_caches_may_appear(tmp_path):
    guard, session = RootGuard(tmp_path), _session()
    guard.pytest_sessionstart(session)
    for name in (".venv", ".pytest_cache", ".ruff_cache", "__pycache__", "build", "x.egg-info"):
        (tmp_path / name).mkdir()
    guard.pytest_sessionfinish(session)
    assert guard.changes() == []
    assert session.exitstatus == pytest.ExitCode.OK


def test_the_run_left_the_repository_root_as_it_found_it(pytestconfig):
    """Run last (conftest moves it to the end): what the tests before it left in the root. The
    guard checks again after the session's fixtures are torn down, and fails the run then."""
    guard = pytestconfig.pluginmanager.get_plugin("sparktf-root-guard")
    assert guard.root == ROOT and (ROOT / "pyproject.toml").is_file()
    assert guard.before is not None
    assert guard.changes() == [], f"the tests changed {ROOT}"
