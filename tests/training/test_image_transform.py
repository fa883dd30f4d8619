"""A TFClassifier model trained on an image column, at transform: the same scores from encoded
bytes, paths and Spark image structs, the same pixels from the transform engine as from the
task's tf.data pipeline, and the same predictions after saving and loading."""

from __future__ import annotations

import io

import numpy as np
from image_training_support import _binary, _image, _named, _paths, _raw, _structs
from PIL import Image

from sparktf.classification import TFClassificationModel
from sparktf.inference._plan import ModelSpec
from sparktf.inference._scoring import raw_and_probability
from sparktf.training._image_pipeline import decode_training_image, image_datasets
from sparktf.training._plans import TrainingData

pytest_plugins = ("image_training_fixtures",)


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
