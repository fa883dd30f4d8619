"""TFClassifier from a pretrained network (baseModel) fine-tuned on an image column: the base's
own input size and channels taken as the image's, predictions by path and by bytes alike, and an
image size or channel count that disagrees with the base refused."""

from __future__ import annotations

import numpy as np
import pytest
from rows import rows_by  # tests/rows.py
from transfer_support import NEW_LABELS, QUICK, SIZE, _accuracy, _images

from sparktf import TFClassifier

pytest_plugins = ("transfer_fixtures",)


@pytest.fixture(scope="session")
def quadrant_files(spark, tmp_path_factory):
    """The new task as PNG files (16x16 grey), read by binaryFile: (train, test) DataFrames."""
    from PIL import Image
    from pyspark.sql import functions as F

    def frame(rows: int, seed: int, folder):
        x, quadrant = _images(rows, seed)
        pixels = np.clip((x[..., 0] + 2.0) * 50.0, 0, 255).astype(np.uint8)
        for i, (image, q) in enumerate(zip(pixels, quadrant, strict=True)):
            Image.fromarray(image).save(folder / f"{i:04d}_{NEW_LABELS[q]}.png")
        files = spark.read.format("binaryFile").load(str(folder))
        label = F.regexp_extract("path", r"_(\d)\.png$", 1).cast("double")
        return files.select("path", "content", label.alias("label")).cache()

    root = tmp_path_factory.mktemp("quadrant_files")
    (root / "train").mkdir()
    (root / "test").mkdir()
    return frame(320, 1, root / "train"), frame(200, 2, root / "test")


def test_a_base_fine_tunes_on_an_image_column_at_its_own_input_size(bases, quadrant_files):
    pretrained, random = bases
    train, test = quadrant_files
    image = {"featuresCol": "content", "imageChannels": 1, "imageScaling": "standardize"}
    kept = TFClassifier(baseModel=pretrained, **image, **QUICK).fit(train)  # no imageSize
    fresh = TFClassifier(baseModel=random, **image, **QUICK).fit(train)
    assert kept.keras_model().input_shape == (None, SIZE, SIZE, 1)
    kept_accuracy, fresh_accuracy = _accuracy(kept, test), _accuracy(fresh, test)
    assert kept_accuracy >= 0.9, (kept_accuracy, fresh_accuracy)
    assert fresh_accuracy <= 0.6, (kept_accuracy, fresh_accuracy)
    # the same images as paths: the model decodes them as in training
    by_path = kept.setFeaturesCol("path").transform(test.drop("content"))
    by_content = kept.setFeaturesCol("content").transform(test)
    assert rows_by(by_path.select("path", "prediction"), "path") == rows_by(
        by_content.select("path", "prediction"), "path"
    )


def test_an_image_column_that_disagrees_with_the_base_is_refused(bases, quadrant_files):
    pretrained, _ = bases
    train, _ = quadrant_files
    image = {"featuresCol": "content", "imageScaling": "unit", **QUICK}
    with pytest.raises(ValueError, match=r"'imageSize' param .* whose input is \[16, 16\] pixels"):
        TFClassifier(baseModel=pretrained, imageSize=[8, 8], imageChannels=1, **image).fit(train)
    with pytest.raises(ValueError, match=r"'imageChannels' param .* must be the 1 channel\(s\)"):
        TFClassifier(baseModel=pretrained, **image).fit(train)
