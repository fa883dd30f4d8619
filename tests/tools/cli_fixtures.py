"""The working folder every test of the ``sparktf`` command runs in (test_cli.py,
test_cli_startup.py, test_cli_tune.py, test_cli_label.py, test_cli_demo.py).

Those modules load this one with ``pytest_plugins`` and use ``cwd`` for every test
(``pytestmark = pytest.mark.usefixtures("cwd")``). It is not a conftest.py in this folder: a
second conftest.py would take the module name ``conftest`` that tests elsewhere in the suite
import from (``from conftest import step_result``). Loaded so, the fixture is visible to the
whole session; only those modules use it.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def cwd(tmp_path_factory, monkeypatch):
    """An empty working folder for the test (and the commands it starts), apart from its
    ``tmp_path``: the commands' default ``--output`` folders are relative, and what a user or an
    earlier run left in the folder the suite runs in must change no outcome."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder
