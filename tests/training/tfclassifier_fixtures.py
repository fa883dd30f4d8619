"""The fitted TFClassificationModel the TFClassifier tests (test_classification_*.py) share.

``small_model`` is fitted once per test session on the digits with the ``SMALL`` Params; the
modules score it, save and load it, and feed it bad rows. They load this module with
``pytest_plugins``, not as a conftest.py in this folder: a second conftest.py would take the
module name ``conftest`` that tests elsewhere in the suite import from
(``from conftest import step_result``). Loaded so, its fixture is visible to the whole session.
setup.cfg keeps ``*_fixtures.py`` out of the doctest collection, which would otherwise import
it before a ``pytest_plugins`` names it, too early for pytest to rewrite its asserts.
"""

from __future__ import annotations

import pytest
from tfclassifier_support import SMALL

from sparktf import TFClassifier


@pytest.fixture(scope="session")
def small_model(digits):
    train, _ = digits
    return TFClassifier(**SMALL).fit(train)
