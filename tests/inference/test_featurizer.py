"""TFGraphTransformer as a featurizer: an inner layer of a Keras model, named in outputMapping,
written as an ml Vector (the model cut at that layer), and the featurizer + LogisticRegression
Pipeline (sparkdl's DeepImageFeaturizer recipe) fitted, saved and loaded.

The images are generated PNGs of two colours (lossless, at the model's size, so the pixels the
transformer feeds are exactly the ones Keras is given here).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import DenseVector
from pyspark.sql import functions as F
from rows import rows_by  # tests/rows.py

from sparktf import TFGraphTransformer
from sparktf.errors import UnknownTensorError
from sparktf.inference import _outline

SIDE = 16


def _image(rng: np.random.RandomState, label: int) -> np.ndarray:
    """A noisy SIDE x SIDE RGB image: reddish for label 0, bluish for label 1."""
    pixels = rng.randint(0, 90, size=(SIDE, SIDE, 3))
    pixels[..., 0 if label == 0 else 2] += 150
    return pixels.astype(np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images(spark, tmp_path_factory):
    """(DataFrame read with binaryFile plus a ``label`` and an ``id``, pixels by id): 60 PNG
    files, 30 of each colour, in a temporary folder."""
    folder = tmp_path_factory.mktemp("featurizer-images")
    rng = np.random.RandomState(21)
    pixels = {}
    for i in range(60):
        label = i % 2
        pixels[i] = _image(rng, label)
        (folder / f"{i:03d}-{label}.png").write_bytes(_png(pixels[i]))
    df = spark.read.format("binaryFile").load(str(folder))
    name = F.element_at(F.split("path", "/"), -1)
    df = df.select(
        "path",
        "content",
        F.substring(name, 1, 3).cast("int").alias("id"),
        F.substring(name, 5, 1).cast("double").alias("label"),
    )
    return df.cache(), pixels


@pytest.fixture(scope="module")
def cnn_file(tf, tmp_path_factory):
    """(the .keras file of a small conv classifier, the model): image [?, 16, 16, 3] -> conv
    [?, 14, 14, 4] -> pool [?, 4] -> probs [?, 2]."""
    import keras

    keras.utils.set_random_seed(8)
    inputs = keras.Input((SIDE, SIDE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("featurizer-model") / "cnn.keras"
    model.save(str(path))
    return str(path), model


def _featurizer(path: str, layer: str, **params) -> TFGraphTransformer:
    return TFGraphTransformer(
        modelPath=path,
        inputCol="content",
        outputMapping={layer: "features"},
        outputTypes={"features": "vector"},
        **params,
    )


@pytest.mark.parametrize(
    ("layer", "width", "freeze"), [("pool", 4, False), ("conv", 14 * 14 * 4, True)]
)
def test_a_named_layer_is_a_vector_column_equal_to_keras(images, cnn_file, layer, width, freeze):
    import keras

    df, pixels = images
    path, model = cnn_file
    out = _featurizer(path, layer, freezeModel=freeze).transform(df)
    assert out.schema["features"].dataType.simpleString() == "vector"
    rows = rows_by(out.select("id", "features"), "id")
    got = np.array([r["features"].toArray() for r in rows])
    assert isinstance(rows[0]["features"], DenseVector)
    assert got.shape == (60, width)
    cut = keras.Model(model.inputs, model.get_layer(layer).output)
    batch = np.stack([pixels[r["id"]] for r in rows]).astype(np.float32) / 255.0
    expected = np.asarray(cut([batch])).reshape(len(rows), -1)  # conv maps: flattened row-major
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_featurizer_and_logistic_regression_pipeline_fits_saves_and_loads(
    images, cnn_file, tmp_path
):
    df, _ = images
    train, test = df.filter("id < 40"), df.filter("id >= 40")
    pipeline = Pipeline(
        stages=[_featurizer(cnn_file[0], "pool"), LogisticRegression(maxIter=50, regParam=0.01)]
    )
    fitted = pipeline.fit(train)
    predicted = fitted.transform(test).select("id", "label", "prediction", "probability")
    rows = rows_by(predicted, "id")
    accuracy = np.mean([r["label"] == r["prediction"] for r in rows])
    assert accuracy >= 0.95, accuracy

    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    again = rows_by(loaded.transform(test).select("id", "prediction", "probability"), "id")
    assert [r["prediction"] for r in again] == [r["prediction"] for r in rows]
    np.testing.assert_allclose(
        [r["probability"].toArray() for r in again], [r["probability"].toArray() for r in rows]
    )


@pytest.fixture(params=["driver", "workers"])
def planned_on(request, monkeypatch):
    """Plan on the driver (it has TensorFlow) or in the workers, as a driver without it does."""
    _outline._ANSWERS.clear()
    if request.param == "workers":
        monkeypatch.setattr(_outline, "tensorflow_loaded", lambda: False)
    yield request.param
    _outline._ANSWERS.clear()


def test_a_layer_the_model_lacks_is_an_error_naming_it_and_its_layers(planned_on, images, cnn_file):
    df, _ = images
    stage = _featurizer(cnn_file[0], "pool_2")
    with pytest.raises(
        UnknownTensorError,
        match=r"The keras model has no output tensor 'pool_2'\. .* Nor has it a layer of that "
        r"name .*; its layers: 'image', 'conv', 'pool', 'probs'\.",
    ):
        stage.transform(df)  # raised when planning: no batch has run


@pytest.fixture
def mixed(spark, images):
    """Images 0..3 and one row (id 99) whose bytes are not an image."""
    df, _ = images
    broken = spark.createDataFrame(
        [("file:/photos/broken.png", bytearray(b"not an image"), 99, 0.0)], df.schema
    )
    return df.filter("id < 4").unionByName(broken)


def test_bad_images_are_skipped_or_named_as_handleInvalid_says(mixed, cnn_file):
    skipped = _featurizer(cnn_file[0], "pool", handleInvalid="skip").transform(mixed)
    assert sorted(r["id"] for r in skipped.select("id").collect()) == [0, 1, 2, 3]
    with pytest.raises(Exception, match=r"the row with path 'file:/photos/broken\.png'"):
        _featurizer(cnn_file[0], "pool").transform(mixed).collect()


def test_a_shared_layer_has_no_single_output_and_is_refused_by_name(tf):
    import keras

    from sparktf.inference._keras import KerasModel

    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    shared = keras.layers.Dense(2, name="shared")
    model = keras.Model([a, b], keras.layers.Add(name="sum")([shared(a), shared(b)]))
    with pytest.raises(ValueError, match=r"The keras model's layer 'shared' has no single output"):
        KerasModel(model).output("shared")
    assert KerasModel(model).output("sum").shape == (None, 2)


def test_keep_gives_a_bad_image_a_null_vector(mixed, cnn_file):
    kept = _featurizer(cnn_file[0], "pool", handleInvalid="keep").transform(mixed)
    rows = {r["id"]: r["features"] for r in kept.select("id", "features").collect()}
    assert sorted(rows) == [0, 1, 2, 3, 99]
    assert rows[99] is None
    assert all(len(rows[i]) == 4 for i in range(4))
