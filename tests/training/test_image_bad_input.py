"""Bad image input to TFClassifier and its model: an undecodable image in a fit (held in memory
or staged) and at transform, a null image, and the image Params checked before training."""

from __future__ import annotations

import pytest
from image_training_support import FAST, _binary, _label, _paths

from sparktf import TFClassifier
from sparktf.errors import TrainingError

pytest_plugins = ("image_training_fixtures",)


def test_an_undecodable_training_image_fails_the_fit_naming_its_path(spark, image_dir, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("c0_00.png", "c1_00.png", "c0_01.png"):
        (folder / name).write_bytes((image_dir / "train" / name).read_bytes())
    (folder / "c1_01.png").write_bytes(b"not an image at all")
    with pytest.raises(
        TrainingError,
        match=r"row \d+ \(file:\S*/bad/c1_01.png\) of image column 'content': cannot decode",
    ):
        TFClassifier(featuresCol="content", **FAST).fit(_binary(spark, folder))
    with pytest.raises(
        TrainingError,
        match=r"row \d+ \(\S*/bad/c1_01.png\) of image column 'file': cannot decode",
    ):
        TFClassifier(featuresCol="file", **FAST).fit(_paths(spark, folder))
    structs = _label(
        spark.read.format("image").option("dropInvalid", False).load(str(folder)), "image.origin"
    )
    with pytest.raises(
        TrainingError,
        match=r"row \d+ \(file:\S*/bad/c1_01.png\) of image column 'image': the image struct "
        r"holds no pixels",
    ):
        TFClassifier(featuresCol="image", **FAST).fit(structs)


def test_a_null_image_is_refused_naming_the_column(spark, image_dir):
    png = (image_dir / "train" / "c0_00.png").read_bytes()
    df = spark.createDataFrame([(png, 0.0), (None, 1.0)], "content binary, label double")
    with pytest.raises(
        ValueError,
        match=r"Column 'content' \(featuresCol\) of TFClassifier must not contain null images. "
        r"Got 1 null row\(s\) of 2",
    ):
        TFClassifier(featuresCol="content", **FAST).fit(df)


def test_image_params_are_checked_before_training(spark, image_dir):
    train = _binary(spark, image_dir / "train")
    no_size = {**FAST, "imageSize": [], "convLayers": []}
    with pytest.raises(ValueError, match=r"The 'imageSize' param of TFClassifier is required"):
        TFClassifier(featuresCol="content", **no_size).fit(train)
    with pytest.raises(ValueError, match=r"'convLayers' .* needs 'inputShape' .* or imageSize"):
        TFClassifier(featuresCol="content", **{**no_size, "convLayers": [4]}).fit(train)
    with pytest.raises(ValueError, match=r"The 'inputShape' param of TFClassifier is for flat"):
        TFClassifier(featuresCol="content", inputShape=[16, 16, 3], **FAST).fit(train)
    with pytest.raises(
        ValueError,
        match=r"'numWorkers' param of TFClassifier trains an image featuresCol \('content'\) on "
        r"several tasks only when the column fits maxBroadcastBytes .* Raise maxBroadcastBytes, "
        r"pass the images as a column of file paths",
    ):
        TFClassifier(featuresCol="content", numWorkers=2, maxBroadcastBytes=1, **FAST).fit(train)
    with pytest.raises(ValueError, match=r"'imageSize' must be \[height, width\]|must be \[height"):
        TFClassifier(imageSize=[16]).fit(train)
    with pytest.raises(ValueError, match=r"'imageChannels' param of TFClassifier must be 3"):
        TFClassifier(imageChannels=2).fit(train)
    flat = spark.createDataFrame(
        [([0.0, 1.0], 0.0), ([1.0, 0.0], 1.0)], "features array<double>, label double"
    )
    with pytest.raises(ValueError, match=r"The 'imageSize' param of TFClassifier is for image col"):
        TFClassifier(imageSize=[4, 4], hiddenLayers=[2], epochs=1).fit(flat)


def test_transform_of_an_undecodable_image_names_its_row_and_path(spark, bytes_model, tmp_path):
    bad = tmp_path / "c0_bad.png"
    bad.write_bytes(b"junk")
    df = spark.createDataFrame([(str(bad), 0.0)], "file string, label double")
    with pytest.raises(
        Exception,
        match=r"TFClassificationModel cannot use the input \('file'\) of the row with path "
        r"'\S*/c0_bad.png': cannot decode image",
    ):
        bytes_model.copy().setFeaturesCol("file").transform(df).collect()
    with pytest.raises(TypeError, match=r"must hold images, as the model was trained on"):
        bytes_model.copy().setFeaturesCol("label").transform(df)


def test_an_undecodable_staged_image_fails_the_fit_naming_its_path(spark, image_dir, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("c0_00.png", "c1_00.png"):
        (folder / name).write_bytes((image_dir / "train" / name).read_bytes())
    (folder / "c1_01.png").write_bytes(b"not an image at all")
    with pytest.raises(
        TrainingError,
        match=r"a row \(file:\S*/bad/c1_01.png\) of image column 'content': cannot decode",
    ):
        TFClassifier(featuresCol="content", maxBroadcastBytes=0, **FAST).fit(_binary(spark, folder))
