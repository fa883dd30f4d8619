"""The images and the fitted model the image-column TFClassifier tests (test_image_*.py) share.

``image_dir`` holds PNG images of three colour classes in train/ and test/, written once per
test session; ``bytes_model`` is fitted once per session on train/'s encoded bytes (the
``FAST`` Params), and the modules score it, save it and feed it bad rows. They load this module
with ``pytest_plugins``, not as a conftest.py in this folder: a second conftest.py would take
the module name ``conftest`` that tests elsewhere in the suite import from
(``from conftest import step_result``). Loaded so, its fixtures are visible to the whole
session.
"""

from __future__ import annotations

import numpy as np
import pytest
from image_training_support import FAST, _binary, _image

from sparktf import TFClassifier


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    """24 PNG images per class in train/ and 8 per class in test/, label in the file name."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    for split, count in (("train", 24), ("test", 8)):
        (root / split).mkdir()
        for label in range(3):
            for i in range(count):
                _image(rng, label).save(root / split / f"c{label}_{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def bytes_model(spark, image_dir):
    """A model trained on encoded bytes (binaryFile's content)."""
    return TFClassifier(featuresCol="content", **FAST).fit(_binary(spark, image_dir / "train"))
