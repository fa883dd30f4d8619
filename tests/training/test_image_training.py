"""Image columns as TFClassifier's training input: encoded bytes, Spark image structs and paths,
decoded by sparktf.image in the task's tf.data pipeline and by the transform engine alike."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql import functions as F
from rows import rows_by  # tests/rows.py

from sparktf import TFClassifier
from sparktf.classification import TFClassificationModel
from sparktf.errors import TrainingError
from sparktf.inference._plan import ModelSpec
from sparktf.inference._scoring import raw_and_probability
from sparktf.training._image_pipeline import decode_training_image, image_datasets
from sparktf.training._plans import TrainingData

# Tiny networks, a few epochs: each fit takes a few seconds.
FAST = {
    "imageSize": [16, 16],
    "convLayers": [4],
    "hiddenLayers": [8],
    "epochs": 4,
    "batchSize": 8,
    "learningRate": 0.02,
    "dropout": 0.0,
}
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))  # one per class


def _image(rng, label: int) -> Image.Image:
    """A noisy image of its class's colour, of a random size (the resize matters)."""
    height, width = int(rng.integers(25, 41)), int(rng.integers(30, 46))
    noise = rng.integers(-40, 41, size=(height, width, 3))
    pixels = np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.fixture(scope="module")
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


def _label(df, path_col: str):
    return df.withColumn("label", F.regexp_extract(F.col(path_col), r"c(\d)_", 1).cast("double"))


def _binary(spark, folder):
    return _label(spark.read.format("binaryFile").load(str(folder)), "path")


def _structs(spark, folder):
    df = spark.read.format("image").load(str(folder))
    return _label(df, "image.origin")


def _paths(spark, folder):
    return _binary(spark, folder).select(F.col("path").alias("file"), "label")


def _accuracy(model, df) -> float:
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return evaluator.evaluate(model.transform(df))


@pytest.mark.parametrize(
    "read,column", [(_binary, "content"), (_structs, "image"), (_paths, "file")]
)
def test_each_image_column_kind_trains_and_transforms(spark, image_dir, read, column, request):
    train, test = read(spark, image_dir / "train"), read(spark, image_dir / "test")
    augment = {"augmentFlip": True, "augmentZoom": 0.1} if column == "image" else {}
    if column == "content":  # this very fit is the module's bytes_model: fitted once
        model = request.getfixturevalue("bytes_model")
    else:
        model = TFClassifier(featuresCol=column, **FAST, **augment).fit(train)
    assert model._image["kind"] in ("image_bytes", "image_struct", "image_path")
    assert model.numFeatures == 16 * 16 * 3
    assert _accuracy(model, test) >= 0.9  # chance is 1/3


@pytest.fixture(scope="module")
def bytes_model(spark, image_dir):
    """A model trained on encoded bytes (binaryFile's content)."""
    return TFClassifier(featuresCol="content", **FAST).fit(_binary(spark, image_dir / "train"))


def _raw(df, column="rawPrediction"):
    rows = rows_by(df, "label", "name")
    return np.array([r[column].toArray() for r in rows])


def _named(df, path_col):
    return df.withColumn("name", F.regexp_extract(F.col(path_col), r"(c\d_\d+)", 1))


def test_a_model_trained_on_bytes_transforms_paths_and_structs_to_the_same_scores(
    spark, image_dir, bytes_model
):
    test = image_dir / "test"
    from_bytes = _raw(bytes_model.transform(_named(_binary(spark, test), "path")))
    paths = _named(_paths(spark, test), "file")
    from_paths = _raw(bytes_model.copy().setFeaturesCol("file").transform(paths))
    structs = _named(_structs(spark, test), "image.origin")
    from_structs = _raw(bytes_model.copy().setFeaturesCol("image").transform(structs))
    assert from_bytes.shape == (24, 3)
    np.testing.assert_allclose(from_paths, from_bytes, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_structs, from_bytes, rtol=1e-5, atol=1e-5)


def _engine_pixels(kind: str, value, size=(16, 16), channels=3) -> np.ndarray:
    """The transform engine's decode of one value, as the classifier's plan asks for it."""
    from sparktf.inference._driver import scores_plan
    from sparktf.inference._rows import row_value

    image = {"kind": kind, "size": list(size), "channels": channels, "path": None}
    spec = ModelSpec("keras", "key", None, "")
    plan = scores_plan("M", "x", False, 0, [("raw", "raw")], True, None, 8, spec, image=image)
    return row_value(plan, plan.inputs[0], value, np.float32)


def _exif_jpeg(rng) -> bytes:
    """A JPEG stored sideways with EXIF orientation 6 (decoders turn it upright)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    _image(rng, 1).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_training_pipeline_and_transform_decode_identical_tensors(spark, image_dir, bytes_model):
    rng = np.random.default_rng(3)
    png = (image_dir / "test" / "c2_00.png").read_bytes()
    jpeg = _exif_jpeg(rng)
    grey = io.BytesIO()
    _image(rng, 0).convert("L").save(grey, format="PNG")  # a grayscale file, RGB model
    values = [png, jpeg, grey.getvalue()]
    for value in values:
        trained = decode_training_image("image_bytes", value, (16, 16), 3)
        np.testing.assert_array_equal(
            trained.astype(np.float32), _engine_pixels("image_bytes", value)
        )
    # the task's tf.data pipeline itself, on the same bytes
    spec = bytes_model._training_spec()
    data = TrainingData(
        num_features=0,
        num_classes=3,
        x=np.array(values, dtype=object),
        y=np.zeros(3, np.int32),
        image_kind="image_bytes",
        image_column="content",
    )
    inputs, rows, _ = image_datasets(spec, data, 0, 0)
    batch = next(iter(inputs["x"].unbatch().batch(3)))  # shuffled: order by pixel sums
    piped = sorted(np.asarray(batch[0]), key=lambda a: float(a.sum()))
    engine = sorted(
        (_engine_pixels("image_bytes", v) for v in values), key=lambda a: float(a.sum())
    )
    assert rows == 3
    for a, b in zip(piped, engine, strict=True):
        np.testing.assert_array_equal(a, b)
    # the model's output on the pipeline's tensor is the transform's rawPrediction
    df = spark.createDataFrame([(png, 2.0)], "content binary, label double")
    transformed = bytes_model.transform(df).first()["rawPrediction"].toArray()
    pixels = _engine_pixels("image_bytes", png)[None]
    out = np.asarray(bytes_model.keras_model()(pixels, training=False))
    raw, _ = raw_and_probability(out.astype(np.float64), True)
    np.testing.assert_allclose(transformed, raw[0], rtol=1e-5, atol=1e-5)
    assert bytes_model.predict(png) == bytes_model.transform(df).first()["prediction"]


def test_the_image_model_saves_loads_and_predicts_the_same(spark, image_dir, bytes_model, tmp_path):
    test = _named(_binary(spark, image_dir / "test"), "path")
    bytes_model.write().save(str(tmp_path / "model"))
    loaded = TFClassificationModel.load(str(tmp_path / "model"))
    assert loaded._image == bytes_model._image
    assert loaded._image == {"size": [16, 16], "channels": 3, "kind": "image_bytes"}
    np.testing.assert_allclose(_raw(loaded.transform(test)), _raw(bytes_model.transform(test)))


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


def test_a_halving_search_tunes_an_image_column_and_refuses_one_above_the_limit(spark, image_dir):
    from sparktf.search import HalvingTrainValidationSplit

    clf = TFClassifier(featuresCol="content", **FAST)
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=[{clf.learningRate: 0.02}, {clf.learningRate: 1e-6}],
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        trainRatio=0.75,
        seed=1,
    )
    train, test = _binary(spark, image_dir / "train"), _binary(spark, image_dir / "test")
    fitted = search.fit(train)
    # the in-task metric is the held-out images' accuracy: the map that learns wins
    assert fitted.validationMetrics[0] > fitted.validationMetrics[1]
    assert fitted.bestModel.getOrDefault("learningRate") == 0.02
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    assert evaluator.evaluate(fitted.bestModel.transform(test)) >= 0.9
    small = search.copy().setEstimator(clf.copy({clf.maxBroadcastBytes: 100}))
    with pytest.raises(
        ValueError, match=r"HalvingTrainValidationSplit needs training data that fits"
    ):
        small.fit(train)


@pytest.mark.parametrize(
    "scaling,expected",
    [
        ("none", [10.0, 128.0, 250.0]),
        ("unit", [10 / 255, 128 / 255, 250 / 255]),
        ("signed", [10 / 127.5 - 1, 128 / 127.5 - 1, 250 / 127.5 - 1]),
        (
            "imagenet",
            [(10 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (250 / 255 - 0.406) / 0.225],
        ),
        ("caffe", [250 - 103.939, 128 - 116.779, 10 - 123.68]),
    ],
)
def test_each_scaling_gives_the_expected_values_and_loads_in_safe_mode(scaling, expected):
    import keras

    from sparktf._loading import keras_to_bytes, load_keras_bytes
    from sparktf.training._image_layers import image_input

    spec = type("Spec", (), {"image_scaling": scaling})()
    inputs, x = image_input(keras, spec, (1, 2, 3))
    model = keras.Model(inputs, x)
    pixel = np.array([[[[10, 128, 250], [0, 0, 0]]]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(pixel))[0, 0, 0], expected, rtol=1e-5, atol=1e-4)
    again = load_keras_bytes(keras_to_bytes(model))  # safe mode: no Lambda layer
    np.testing.assert_allclose(np.asarray(again(pixel)), np.asarray(model(pixel)), rtol=1e-6)


def test_standardize_adapts_per_channel_on_the_training_pixels():
    import keras
    import tensorflow as tf

    from sparktf.training._image_layers import image_input

    spec = type("Spec", (), {"image_scaling": "standardize"})()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 4, 4, 3)).astype(np.float32)
    pixels[..., 2] = 7.0  # a channel constant in training is only centred
    batches = tf.data.Dataset.from_tensor_slices(pixels).batch(4)

    def constants(norm):
        from sparktf.training._networks import unit_scale_for_constants

        unit_scale_for_constants(norm)

    inputs, x = image_input(keras, spec, (4, 4, 3), batches, constants)
    out = np.asarray(keras.Model(inputs, x)(pixels))
    np.testing.assert_allclose(out[..., :2].mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out[..., :2].std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    np.testing.assert_allclose(out[..., 2], 0.0, atol=1e-5)


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


def test_a_folder_of_labelled_images_trains_from_its_paths(spark, image_dir, tmp_path):
    from sparktf.datasets import load_image_folder

    for label in range(3):
        folder = tmp_path / f"c{label}"  # sorted folder order = the class index
        folder.mkdir()
        for file in (image_dir / "train").glob(f"c{label}_*.png"):
            (folder / file.name).write_bytes(file.read_bytes())
    photos = load_image_folder(spark, str(tmp_path))
    model = TFClassifier(featuresCol="path", **FAST).fit(photos)
    test = _paths(spark, image_dir / "test").withColumnRenamed("file", "path")
    assert _accuracy(model, test) >= 0.9


@pytest.mark.parametrize("read,column", [(_binary, "content"), (_structs, "image")])
def test_images_above_the_broadcast_limit_are_staged_and_streamed(
    spark, image_dir, read, column, caplog
):
    import logging

    caplog.set_level(logging.INFO, logger="sparktf")
    train, test = read(spark, image_dir / "train"), read(spark, image_dir / "test")
    clf = TFClassifier(featuresCol=column, maxBroadcastBytes=0, validationSplit=0.2, **FAST)
    model = clf.fit(train)
    assert any(" staging 72 rows" in r.getMessage() for r in caplog.records)
    assert "val_loss" in model.history["epochs"]
    assert _accuracy(model, test) >= 0.9


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


def test_train_validation_split_tunes_an_image_column(spark, image_dir):
    from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit

    clf = TFClassifier(featuresCol="content", **{**FAST, "epochs": 1})
    grid = ParamGridBuilder().addGrid(clf.imageScaling, ["unit", "standardize"]).build()
    tvs = TrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        trainRatio=0.75,
        seed=1,
    )
    model = tvs.fit(_binary(spark, image_dir / "train"))
    assert len(model.validationMetrics) == 2
    assert all(m is not None and m > 1 / 3 for m in model.validationMetrics)
    assert model.bestModel._image["size"] == [16, 16]


def test_workers_shards_of_an_image_column_cover_it_and_pool_its_moments(image_dir):
    """Each of two workers decodes its own half of the training images; the standardization's
    moments pooled from their sums are those of all the training pixels."""
    from sparktf._classifier_params import training_spec
    from sparktf.training._image_pipeline import decode_rows, split_rows
    from sparktf.training._image_shard import ImageShard

    files = sorted((image_dir / "train").glob("*.png"))
    x = np.empty(len(files), dtype=object)
    x[:] = [f.read_bytes() for f in files]
    y = np.array([int(f.name[1]) for f in files], dtype=np.int32)
    data = TrainingData(0, 3, x=x, y=y, image_kind="image_bytes", image_column="content")
    spec = training_spec(**{**FAST, "validationSplit": 0.25, "numWorkers": 2})
    shards = [ImageShard(spec, data, 5, rank, 2) for rank in (0, 1)]
    train, held = split_rows(spec, data, 5)
    assert sorted(np.concatenate([s.train for s in shards])) == sorted(train)
    assert sorted(np.concatenate([s.held for s in shards])) == sorted(held)
    assert abs(shards[0].rows - shards[1].rows) <= 1
    sums = shards[0].moment_sums() + shards[1].moment_sums()
    pixels = decode_rows(data, train, (16, 16, 3)).reshape(-1, 3).astype(np.float64)
    assert sums[0] == len(pixels)
    np.testing.assert_allclose(sums[1:4] / sums[0], pixels.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(
        sums[4:] / sums[0] - (sums[1:4] / sums[0]) ** 2, pixels.var(axis=0), rtol=1e-6
    )
    import tensorflow as tf

    shard = shards[1]  # an epoch of 3-row batches over all of its rows, decoded
    batches = list(shard.epoch(tf, 3, shard.rows // 3, seed=0))
    assert all(tuple(b[0].shape) == (3, 16, 16, 3) for b in batches)
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(labels) == sorted(y[shard.train[: len(labels)]]) and len(labels) == shard.rows
