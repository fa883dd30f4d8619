"""TFGraphTransformer: model sources, mapping, images, labels, shipping, errors, persistence.

Every model is built here, small, in a temporary folder: Keras files (.keras, .h5), a frozen
GraphDef with the seed-style scalar encoded-image input, a batched frozen GraphDef, and a
SavedModel with two signatures (two inputs and two outputs each). Predictions are compared with
the same model applied directly in TensorFlow.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pyspark.ml import PipelineModel
from pyspark.ml.linalg import DenseVector, Vectors
from pyspark.sql import functions as F

from sparktf import TFGraphTransformer
from sparktf.errors import ModelSourceError, UnknownTensorError

SIDE = 16
LABELS = ["coral reef", "scuba diver", "sea anemone", "brain coral"]


# -- models, built once per module -------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def photos():
    """The two photographs scikit-learn ships: folder, and {name: bytes}."""
    import sklearn.datasets

    source = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    data = {}
    for name in ("china.jpg", "flower.jpg"):
        with open(os.path.join(source, name), "rb") as handle:
            data[name] = handle.read()
    return source, data


def _pixels(data: bytes, channels: str = "RGB", scaled: bool = True) -> np.ndarray:
    """Reference preprocessing: Pillow decode (of a JPEG at the reduced scale Pillow's draft
    picks, unless not ``scaled``), bilinear resize, scale to [0, 1]."""
    image = Image.open(io.BytesIO(data))
    if scaled:
        image.draft(channels, (SIDE, SIDE))
    image = image.convert(channels).resize((SIDE, SIDE), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def cnn(tf):
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((SIDE, SIDE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def keras_files(folder, mlp, cnn):
    paths = {"mlp.keras": mlp, "mlp.h5": mlp, "cnn.keras": cnn}
    for name, model in paths.items():
        model.save(str(folder / name))
    return {name: str(folder / name) for name in paths}


def _seed_graph(tf):
    """A frozen graph like the 2016 Inception one: ONE encoded JPEG string in, [1, N] out."""
    graph = tf.Graph()
    rng = np.random.RandomState(5)
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name="DecodeJpeg/contents")
        image = tf.io.decode_jpeg(contents, channels=3)
        image = tf.cast(tf.expand_dims(image, 0), tf.float32) / 255.0
        image = tf.compat.v1.image.resize_bilinear(image, [SIDE, SIDE])
        features = tf.reduce_mean(image, axis=[1, 2])  # [1, 3]
        weights = tf.constant(rng.randn(3, len(LABELS)).astype(np.float32) * 3)
        bias = tf.constant(rng.randn(len(LABELS)).astype(np.float32))
        tf.nn.softmax(tf.matmul(features, weights) + bias, name="softmax")
    return graph


@pytest.fixture(scope="module")
def seed_graph(tf, folder):
    graph = _seed_graph(tf)
    path = folder / "seed.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    labels = folder / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    return graph, str(path), str(labels)


@pytest.fixture(scope="module")
def batched_graph(tf, folder, mlp):
    """The MLP frozen with tf.function + convert_variables_to_constants_v2: x:0 [?, 4] in."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda x: mlp(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, 4], tf.float32, name="x")
    )
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    path = folder / "mlp.pb"
    path.write_bytes(graph_def.SerializeToString())
    return graph_def, str(path), frozen.outputs[0].name


class _TwoByTwo:
    """A SavedModel: serving_default (image, offset) -> (probs, brightness); arrays (a, b) ->
    (total, diff)."""

    def __init__(self, tf):
        rng = np.random.RandomState(6)
        module = tf.Module()
        module.w = tf.Variable(rng.randn(3, 2).astype(np.float32))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, SIDE, SIDE, 3], tf.float32, name="image"),
                tf.TensorSpec([None, 2], tf.float32, name="offset"),
            ]
        )
        def serve(image, offset):
            mean = tf.reduce_mean(image, axis=[1, 2])
            return {
                "probs": tf.nn.softmax(tf.matmul(mean, module.w) * 4 + offset),
                "brightness": tf.reduce_mean(mean, axis=1),
            }

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4], tf.float32, name="a"),
                tf.TensorSpec([None, 4], tf.float32, name="b"),
            ]
        )
        def arrays(a, b):
            return {"total": tf.reduce_sum(a * b, axis=1), "diff": a - b}

        module.serve, module.arrays = serve, arrays
        self.module = module


@pytest.fixture(scope="module")
def saved_model(tf, folder):
    holder = _TwoByTwo(tf)
    path = str(folder / "two_by_two")
    tf.saved_model.save(
        holder.module,
        path,
        signatures={"serving_default": holder.module.serve, "arrays": holder.module.arrays},
    )
    return holder.module, path


# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features_df(spark, features):
    rows = [(i, features[i].tolist()) for i in range(len(features))]
    return spark.createDataFrame(rows, "id long, f array<float>").repartition(3).cache()


@pytest.fixture(scope="module")
def photo_files(spark, photos):
    source, _ = photos
    return spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(source).cache()


def _by_id(df, column="id"):
    # Sorted here, not by orderBy: a range sort samples its input first, running the model twice.
    return sorted((r.asDict() for r in df.collect()), key=lambda r: r[column])


def _by_name(df):
    return {os.path.basename(r["path"]): r.asDict() for r in df.collect()}


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-5, atol=1e-6)


# -- model sources on arrays -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp.keras", "mlp.h5"])
def test_keras_file_on_arrays_matches_model(features_df, features, keras_files, mlp, name):
    stage = TFGraphTransformer(modelPath=keras_files[name], inputCol="f", outputCol="scores")
    rows = _by_id(stage.transform(features_df))
    assert list(rows[0]) == ["id", "f", "scores"]
    _close([r["scores"] for r in rows], mlp(features).numpy())
    assert rows[0]["f"] == pytest.approx(features[0].tolist())


@pytest.mark.parametrize("element", ["double", "int"])
def test_arrays_of_other_numbers_feed_a_float_tensor_cast_on_the_jvm(
    spark, features, keras_files, mlp, element, capsys
):
    """Doubles (or ints) for a float32 tensor are cast to floats before they leave the JVM:
    half the bytes cross to Python, and the scores are the model's on the float32 values."""
    values = features.astype(np.float64) * (1.0 if element == "double" else 100.0)
    if element == "int":
        values = np.round(values)
    rows = [(i, [float(v) for v in row]) for i, row in enumerate(values)]
    df = spark.createDataFrame(rows, "id long, f array<double>")
    df = df.withColumn("f", df["f"].cast(f"array<{element}>"))
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f", outputCol="s")
    out = stage.transform(df)
    _close([r["s"] for r in _by_id(out)], mlp(values.astype(np.float32)).numpy())
    out.explain()
    assert "as array<float>" in capsys.readouterr().out


def test_vectors_into_a_float64_tensor_keep_their_doubles(spark, tf, tmp_path):
    module = tf.Module()
    module.twice = tf.function(  # one double per row: a double column, no float32 on the way
        lambda x: {"y": x[:, 0] * 2.0 + x[:, 1]},
        input_signature=[tf.TensorSpec([None, 2], tf.float64, name="x")],
    )
    path = str(tmp_path / "f64")
    tf.saved_model.save(module, path, signatures={"serving_default": module.twice})
    df = spark.createDataFrame([(0, Vectors.dense([0.1, 1 / 3]))], ["id", "v"])
    stage = TFGraphTransformer(modelPath=path, inputMapping={"v": "x"}, outputMapping={"y": "y"})
    (row,) = stage.transform(df).collect()
    assert row["y"] == 0.1 * 2.0 + 1 / 3  # exactly: float32 would give 0.53333336


def test_batched_graphdef_on_arrays_by_path_and_from_graphdef(
    features_df, features, batched_graph, mlp
):
    graph_def, path, output = batched_graph
    expected = mlp(features).numpy()
    by_path = TFGraphTransformer(
        modelPath=path, inputMapping={"f": "x:0"}, outputMapping={output: "p"}, batchSize=4
    )
    _close([r["p"] for r in _by_id(by_path.transform(features_df))], expected)
    from_proto = TFGraphTransformer.fromGraphDef(graph_def, inputMapping={"f": "x"}, outputCol="p")
    _close([r["p"] for r in _by_id(from_proto.transform(features_df))], expected)


def test_savedmodel_named_signature_two_inputs_two_outputs(spark, saved_model, features):
    _, path = saved_model
    b = features[::-1].copy()
    df = spark.createDataFrame(
        [(i, features[i].tolist(), b[i].tolist()) for i in range(len(features))],
        "id long, a array<float>, b array<float>",
    )
    stage = TFGraphTransformer(
        modelPath=path,
        signatureName="arrays",
        inputMapping={"a": "a", "b": "b:0"},  # a signature key, and a tensor name
        outputMapping={"total": "total", "diff": "diff"},
    )
    result = stage.transform(df)
    assert result.schema["total"].dataType.simpleString() == "double"
    assert result.schema["diff"].dataType.simpleString() == "array<float>"
    rows = _by_id(result)
    _close([r["total"] for r in rows], (features * b).sum(axis=1))
    _close([r["diff"] for r in rows], features - b)


def test_flat_vector_column_reshaped_and_vector_output(spark, keras_files, cnn):
    images = np.random.RandomState(8).rand(3, SIDE, SIDE, 3).astype(np.float32)
    df = spark.createDataFrame(
        [(i, Vectors.dense(images[i].ravel().tolist())) for i in range(3)], ["id", "pixels"]
    )
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"],
        inputCol="pixels",
        outputCol="probs",
        outputTypes={"probs": "vector"},
    )
    rows = _by_id(stage.transform(df))
    assert all(isinstance(r["probs"], DenseVector) for r in rows)
    _close([r["probs"].toArray() for r in rows], cnn(images).numpy())


def test_scalar_input_column_and_integer_and_string_outputs(tf, features_df, features):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        scale = tf.compat.v1.placeholder(tf.float32, [None], name="scale")
        best = tf.argmax(x * scale[:, None], axis=1, name="best")  # int64 [?]
        tf.gather(tf.constant(LABELS), best, name="name")  # string [?]
    stage = TFGraphTransformer.fromGraphDef(
        graph.as_graph_def(),
        inputMapping={"f": "x", "s": "scale"},
        outputMapping={"best": "best", "name": "name", "best:0": "best_as_double"},
        outputTypes={"best_as_double": "double"},
    )
    df = features_df.withColumn("s", F.when(F.col("id") % 2 == 0, 1.0).otherwise(-1.0))
    result = stage.transform(df)
    types = {f.name: f.dataType.simpleString() for f in result.schema.fields}
    assert (types["best"], types["name"], types["best_as_double"]) == ("bigint", "string", "double")
    signs = np.where(np.arange(len(features)) % 2 == 0, 1.0, -1.0)[:, None]
    expected = np.argmax(features * signs, axis=1)
    rows = _by_id(result)
    assert [r["best"] for r in rows] == expected.tolist()
    assert [r["name"] for r in rows] == [LABELS[i] for i in expected]
    assert [r["best_as_double"] for r in rows] == expected.astype(float).tolist()


def test_auto_output_of_one_number_per_row_is_a_double(features_df, features, tf):
    import keras

    keras.utils.set_random_seed(12)
    model = keras.Sequential([keras.Input((4,), name="f"), keras.layers.Dense(1, name="y")])
    stage = TFGraphTransformer.fromKeras(model, inputCol="f", outputCol="y")
    result = stage.transform(features_df)
    assert result.schema["y"].dataType.simpleString() == "double"  # a [?, 1] output
    _close([r["y"] for r in _by_id(result)], model(features).numpy()[:, 0])
    assert TFGraphTransformer().getParam("batchSize").doc.startswith("rows fed to the model")


# -- images --------------------------------------------------------------------------------------


def test_keras_on_jpegs_from_binary_files(photo_files, photos, keras_files, cnn):
    _, data = photos
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"],
        inputCol="content",
        outputCol="scores",
        labels=LABELS,
        topK=2,
        scaledDecode=False,  # the full decode: the same pixels as the Pillow reference
    )
    result = stage.transform(photo_files)
    assert result.columns == [*photo_files.columns, "scores", "topK"]
    assert (
        result.schema["topK"].dataType.simpleString() == "array<struct<label:string,score:float>>"
    )
    rows = _by_name(result)
    for name, content in data.items():
        expected = cnn(_pixels(content, scaled=False)[None]).numpy()[0]
        _close(rows[name]["scores"], expected)
        order = np.argsort(-expected)[:2]
        assert [p["label"] for p in rows[name]["topK"]] == [LABELS[i] for i in order]
        _close([p["score"] for p in rows[name]["topK"]], expected[order])


def test_jpegs_are_decoded_at_a_reduced_scale_by_default(photo_files, photos, keras_files, cnn):
    _, data = photos
    stage = TFGraphTransformer(modelPath=keras_files["cnn.keras"], inputCol="content")
    assert stage.getScaledDecode() is True
    rows = _by_name(stage.transform(photo_files))
    exact = _by_name(stage.copy({stage.scaledDecode: False}).transform(photo_files))
    for name, content in data.items():
        # 640x427 photos for a 16x16 input: decoded at 1/8 scale (80x54), then resized.
        _close(rows[name]["prediction"], cnn(_pixels(content)[None]).numpy()[0])
        assert not np.allclose(rows[name]["prediction"], exact[name]["prediction"], atol=1e-7)
        np.testing.assert_allclose(rows[name]["prediction"], exact[name]["prediction"], atol=0.05)


def test_a_string_column_of_paths_is_read_by_the_workers(
    spark, photo_files, photos, keras_files, cnn, tmp_path
):
    """Paths (binaryFile's file: URIs, or plain paths) into an image tensor: each worker reads
    the files itself and decodes them as it decodes bytes, so no bytes cross from the JVM."""
    _, data = photos
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"], inputCol="path", labels=LABELS, topK=2
    )
    by_uri = _by_name(stage.transform(photo_files.select("path")))
    from_bytes = _by_name(stage.setInputCol("content").transform(photo_files))
    plain = [(str(tmp_path / name),) for name in data]
    for name, content in data.items():
        (tmp_path / name).write_bytes(content)
    by_path = _by_name(stage.setInputCol("path").transform(spark.createDataFrame(plain, ["path"])))
    for name, content in data.items():
        expected = cnn(_pixels(content)[None]).numpy()[0]
        _close(by_uri[name]["prediction"], expected)
        assert by_uri[name]["prediction"] == from_bytes[name]["prediction"]
        assert by_uri[name]["topK"] == from_bytes[name]["topK"]
        _close(by_path[name]["prediction"], expected)
    # A file that cannot be read is an invalid row, named by its path.
    missing = spark.createDataFrame([(str(tmp_path / "gone.jpg"),), plain[0]], ["path"])
    with pytest.raises(
        Exception,
        match=r"cannot use the input \('path'\) of the row with path '.*gone.jpg': cannot read "
        r"image file: No such file or directory",
    ):
        stage.transform(missing).collect()
    kept = stage.copy({stage.handleInvalid: "skip"}).transform(missing).collect()
    assert [os.path.basename(r["path"]) for r in kept] == ["china.jpg"]
    # Strings feeding a tensor that is not an image are still refused on the driver.
    with pytest.raises(TypeError, match="or a string path of an image file"):
        TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="path").transform(missing)


def test_keras_on_spark_image_structs_in_bgr(spark, photos, keras_files, cnn):
    source, _ = photos
    df = spark.read.format("image").option("pathGlobFilter", "*.jpg").load(source)
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"],
        inputCol="image",
        outputCol="scores",
        channelOrder="bgr",
        imageScaling="signed",
    )
    result = {r["image"]["origin"]: r for r in stage.transform(df).collect()}
    assert len(result) == 2
    for row in result.values():
        struct = row["image"]
        bgr = np.frombuffer(struct["data"], np.uint8).reshape(
            struct["height"], struct["width"], struct["nChannels"]
        )
        rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
        rgb = np.asarray(rgb.resize((SIDE, SIDE), Image.BILINEAR), np.float32)
        model_input = rgb[:, :, ::-1] / 127.5 - 1.0  # the model wants BGR in [-1, 1]
        _close(row["scores"], cnn(model_input[None]).numpy()[0])


@pytest.mark.parametrize(("channels", "squeeze"), [(1, False), (1, True), (3, False), (4, False)])
@pytest.mark.parametrize("scaling,order", [("none", "rgb"), ("unit", "bgr"), ("signed", "bgr")])
def test_image_struct_batches_convert_like_single_rows(channels, squeeze, scaling, order):
    """A chunk of structs of the model's size becomes one block equal, row for row, to converting
    each struct alone; a null in one chunk leaves the other chunks of the batch alone."""
    import pandas as pd

    from sparktf.inference import _rows
    from sparktf.inference._plan import InputPlan

    rng = np.random.RandomState(channels)
    height, width = 4, 3  # width 3: channel order must not touch the width of grayscale rows
    pixels = rng.randint(0, 256, (6, height, width, channels)).astype(np.uint8)
    mode = {1: 0, 3: 16, 4: 24}[channels]
    rows = [
        {"origin": f"r{i}", "height": height, "width": width, "nChannels": channels,
         "mode": mode, "data": bytearray(p.tobytes())}
        for i, p in enumerate(pixels)
    ]  # fmt: skip
    rows[5] = {k: None for k in rows[0]}  # a null struct in the second chunk
    frame = pd.DataFrame(rows)
    item = InputPlan(
        column="image", tensor="image", dtype="float32",
        kind="image_struct", size=(height, width), channels=1 if channels == 1 else 3,
        squeeze=squeeze, scaling=scaling, order=order,
    )  # fmt: skip
    parts = _rows.image_struct_parts(frame)
    for dtype in (np.float32, np.float64, np.uint8):
        block = _rows.image_struct_block(item, parts, 0, 3, dtype)
        assert block is not None and block.dtype == dtype
        single = [_rows.row_value({}, item, rows[i], dtype) for i in range(3)]
        np.testing.assert_array_equal(block, np.stack(single))
    assert _rows.image_struct_block(item, parts, 3, 6, np.float32) is None  # row 5 is null
    if squeeze:  # grayscale rows keep their left-to-right order whatever channelOrder says
        expected = pixels[0, :, :, 0].astype(np.float64)
        got = _rows.row_value({}, item, rows[0], np.float64)
        scale = {"none": 1.0, "unit": 1 / 255, "signed": 1 / 127.5}[scaling]
        np.testing.assert_allclose(got, expected * scale - (scaling == "signed"), atol=1e-6)


def test_model_path_identity_follows_content_even_at_same_size_and_time(tmp_path):
    from sparktf.inference._model_files import fingerprint as _fingerprint

    path = tmp_path / "model.pb"
    stamp = (1_700_000_000_000_000_000, 1_700_000_000_000_000_000)
    keys = []
    for content in (b"weights-A", b"weights-B", b"weights-A"):
        path.write_bytes(content)
        os.utime(path, ns=stamp)
        keys.append(_fingerprint(str(path))[0])
    assert keys[0] != keys[1]
    assert keys[0] == keys[2]
    folder = tmp_path / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "v.data").write_bytes(b"1234")
    os.utime(folder / "variables" / "v.data", ns=stamp)
    before = _fingerprint(str(folder))
    (folder / "variables" / "v.data").write_bytes(b"5678")
    os.utime(folder / "variables" / "v.data", ns=stamp)
    assert before[1] and _fingerprint(str(folder))[0] != before[0]


def test_image_structs_of_the_model_size_mixed_with_others(spark, keras_files, cnn):
    """Structs already at the model's size (BGR, BGRA, grayscale) are read without resizing,
    next to ones that must be resized, in the same batches; a null struct is kept as null."""
    from pyspark.ml.image import ImageSchema

    rng = np.random.RandomState(11)
    images, expected = [], {}
    for i in range(12):
        channels = (3, 3, 3, 3, 4, 4, 4, 4, 1, 3, 1, 3)[i]  # batches of 4: BGR, BGRA, mixed
        side = SIDE if i < 10 else SIDE + 5
        pixels = rng.randint(0, 256, (side, side, channels)).astype(np.uint8)
        mode = {1: 0, 3: 16, 4: 24}[channels]
        images.append((i, (f"img{i}", side, side, channels, mode, bytearray(pixels.tobytes()))))
        if channels == 1:
            rgb = Image.fromarray(pixels[:, :, 0], "L").convert("RGB")
        else:
            rgb = Image.fromarray(np.ascontiguousarray(pixels[:, :, 2::-1]), "RGB")
        rgb = np.asarray(rgb.resize((SIDE, SIDE), Image.BILINEAR), np.float32) / 255.0
        expected[i] = cnn(rgb[None]).numpy()[0]
    images.append((12, None))
    schema = f"id long, image {ImageSchema.imageSchema['image'].dataType.simpleString()}"
    df = spark.createDataFrame(images, schema).coalesce(1)
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"],
        inputCol="image",
        outputCol="scores",
        imageScaling="unit",
        handleInvalid="keep",
        batchSize=4,
    )
    rows = _by_id(stage.transform(df))
    assert [r["id"] for r in rows] == list(range(13))
    for row in rows[:12]:
        _close(row["scores"], expected[row["id"]])
    assert rows[12]["scores"] is None


def test_seed_graphdef_scalar_jpeg_input_gives_top_labels(tf, photo_files, photos, seed_graph):
    graph, path, labels_path = seed_graph
    _, data = photos
    stage = TFGraphTransformer(
        modelPath=path,
        inputMapping={"content": "DecodeJpeg/contents:0"},
        outputMapping={"softmax:0": "scores"},
        labelsPath=labels_path,
        topK=3,
    )
    rows = _by_name(stage.transform(photo_files))
    with tf.compat.v1.Session(graph=graph) as session:
        for name, content in data.items():
            expected = session.run("softmax:0", {"DecodeJpeg/contents:0": content})[0]
            _close(rows[name]["scores"], expected)
            order = np.argsort(-expected)[:3]
            assert [p["label"] for p in rows[name]["topK"]] == [LABELS[i] for i in order]


def test_savedmodel_on_jpegs_plus_array_input(spark, photo_files, photos, saved_model):
    module, path = saved_model
    _, data = photos
    df = photo_files.withColumn(
        "offset", F.array(F.length("path").cast("float") / 100, F.lit(-0.5).cast("float"))
    )
    stage = TFGraphTransformer(
        modelPath=path,
        inputMapping={"content": "image", "offset": "offset"},
        outputMapping={"probs": "probs", "brightness": "brightness"},
    )
    rows = _by_name(stage.transform(df))
    for name, content in data.items():
        offset = np.array([rows[name]["offset"]], np.float32)
        expected = module.serve(image=_pixels(content)[None], offset=offset)
        _close(rows[name]["probs"], expected["probs"].numpy()[0])
        _close(rows[name]["brightness"], expected["brightness"].numpy()[0])


@pytest.fixture(scope="module")
def mixed_images(spark, photos):
    _, data = photos
    rows = [("ok.jpg", data["china.jpg"]), ("broken.jpg", b"\xff\xd8 truncated"), ("null", None)]
    return spark.createDataFrame(rows, "path string, content binary")


def test_invalid_images_skip_and_keep(mixed_images, keras_files, photos, cnn):
    _, data = photos
    expected = cnn(_pixels(data["china.jpg"])[None]).numpy()[0]
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"], inputCol="content", labels=LABELS, topK=1
    )
    skipped = stage.copy({stage.handleInvalid: "skip"}).transform(mixed_images).collect()
    assert [r["path"] for r in skipped] == ["ok.jpg"]
    _close(skipped[0]["prediction"], expected)
    kept = {r["path"]: r for r in stage.setHandleInvalid("keep").transform(mixed_images).collect()}
    assert sorted(kept) == ["broken.jpg", "null", "ok.jpg"]
    assert kept["broken.jpg"]["prediction"] is None and kept["broken.jpg"]["topK"] is None
    assert kept["null"]["prediction"] is None
    _close(kept["ok.jpg"]["prediction"], expected)


def test_graph_that_decodes_images_itself_follows_handle_invalid_keep(
    tf, mixed_images, seed_graph, photos
):
    graph, path, _ = seed_graph
    stage = TFGraphTransformer(
        modelPath=path,
        inputMapping={"content": "DecodeJpeg/contents:0"},
        outputMapping={"softmax:0": "scores"},
        handleInvalid="keep",
    )
    rows = {r["path"]: r for r in stage.transform(mixed_images).collect()}
    assert rows["broken.jpg"]["scores"] is None and rows["null"]["scores"] is None
    with tf.compat.v1.Session(graph=graph) as session:
        content = photos[1]["china.jpg"]
        expected = session.run("softmax:0", {"DecodeJpeg/contents:0": content})[0]
    _close(rows["ok.jpg"]["scores"], expected)


# -- shipping, caching, threads --------------------------------------------------------------


def _worker_state(spark, key):
    """(pid, loads of ``key``, TF intra-op threads) in the Python workers that run SQL UDFs."""

    def probe(frames):
        import pandas as pd

        from sparktf import _tf
        from sparktf.inference import _sources

        for _ in frames:
            threads = _tf.configured_threads() or 0
            count = _sources.LOAD_COUNTS.get(key, 0)
            yield pd.DataFrame({"pid": [os.getpid()], "loads": [count], "threads": [threads]})

    frame = spark.range(0, 16, 1, 16).mapInPandas(probe, "pid long, loads long, threads long")
    return [tuple(r) for r in frame.collect()]


def test_model_loaded_once_per_worker_and_threads_follow_task_cpus(spark, features_df, tf):
    import keras

    from sparktf.inference._driver import model_spec

    keras.utils.set_random_seed(11)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    stage = TFGraphTransformer.fromKeras(model, inputCol="f")
    key = model_spec(stage, spark, "keras")[0].key
    for _ in range(2):
        assert len(stage.transform(features_df.repartition(6)).collect()) == 9
    state = _worker_state(spark, key)
    loads = {pid: count for pid, count, _ in state}
    assert max(loads.values()) == 1, loads  # each Python worker loaded it once, 12 tasks
    cpus = int(spark.conf.get("spark.task.cpus", "1"))
    assert {threads for _, count, threads in state if count} == {cpus}


@pytest.mark.parametrize("broadcast", [True, False])
def test_changed_model_file_is_never_served_stale(spark, features_df, features, folder, broadcast):
    import keras

    path = str(folder / f"changing-{broadcast}.keras")
    stage = TFGraphTransformer(modelPath=path, inputCol="f", broadcastModel=broadcast)
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.save(path)
        # Rewritten within the same second: same size, same modification time, new weights.
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        _close([r["prediction"] for r in _by_id(stage.transform(features_df))], model(features))


def test_workers_read_model_path_themselves(features_df, features, saved_model):
    _, path = saved_model
    stage = TFGraphTransformer(
        modelPath=path, signatureName="arrays", broadcastModel=False,
        inputMapping={"f": "a", "g": "b"}, outputMapping={"total": "t"},
    )  # fmt: skip
    df = features_df.withColumn("g", F.col("f"))
    _close([r["t"] for r in _by_id(stage.transform(df))], (features * features).sum(axis=1))


# -- edge cases --------------------------------------------------------------------------------


def test_one_row_batches_empty_partitions_and_empty_dataframe(
    spark, features_df, features, keras_files, mlp
):
    expected = mlp(features).numpy()
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f", batchSize=1)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    spark.conf.set(key, "1")
    try:
        _close([r["prediction"] for r in _by_id(stage.transform(features_df))], expected)
    finally:
        spark.conf.set(key, previous)
    sparse = features_df.filter("id < 2").repartition(7)  # most partitions are empty
    _close([r["prediction"] for r in _by_id(stage.transform(sparse))], expected[:2])
    empty = stage.transform(features_df.limit(0))
    assert empty.columns == ["id", "f", "prediction"]
    assert empty.collect() == []


# -- errors, before any output -----------------------------------------------------------------


def test_unknown_tensor_lists_graph_inputs_and_outputs(features_df, batched_graph):
    _, path, output = batched_graph
    stage = TFGraphTransformer(modelPath=path, inputMapping={"f": "images:0"})
    with pytest.raises(
        UnknownTensorError,
        match=r"The graphdef model has no input tensor 'images:0'\. Its inputs: 'x:0' "
        rf"\(float32, \[\?, 4\]\)\. Its outputs: '{output}' \(float32, \[\?, 4\]\)\.",
    ):
        stage.transform(features_df)


def test_unknown_signature_and_output_key_of_savedmodel(features_df, saved_model):
    _, path = saved_model
    stage = TFGraphTransformer(modelPath=path, signatureName="predict", inputCol="f")
    with pytest.raises(
        UnknownTensorError,
        match=r"The SavedModel has no signature 'predict'\. Its signatures: "
        r"\['arrays', 'serving_default'\]\.",
    ):
        stage.transform(features_df)
    stage = TFGraphTransformer(
        modelPath=path, signatureName="arrays", inputMapping={"f": "a", "g": "b"},
        outputMapping={"sum": "s"},
    )  # fmt: skip
    with pytest.raises(
        UnknownTensorError, match=r"no output tensor 'sum'\. Its inputs: 'a' \(float32, \[\?, 4\]\)"
    ):
        stage.transform(features_df.withColumn("g", F.col("f")))


def test_wrong_column_type(spark, keras_files):
    df = spark.createDataFrame([("a",)], ["f"])
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    with pytest.raises(
        TypeError,
        match=r"Column 'f' of TFGraphTransformer feeds tensor 'feat' \(float32, \[\?, 4\]\) and "
        r"must be numeric: .* Got string instead\.",
    ):
        stage.transform(df)


def test_static_shape_mismatch_is_caught_on_the_driver(features_df, keras_files):
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"], inputCol="f", inputShapes={"f": [2, 2, 1]}
    )
    with pytest.raises(
        ValueError,
        match=r"reshapes rows of column 'f' to inputShapes \[2, 2, 1\], but tensor 'image' "
        r"\(float32, \[\?, 16, 16, 3\]\) expects rows of shape \[16, 16, 3\]",
    ):
        stage.transform(features_df)


def test_missing_model_path(features_df, folder):
    missing = str(folder / "nowhere.pb")
    for broadcast in (True, False):
        stage = TFGraphTransformer(modelPath=missing, inputCol="f", broadcastModel=broadcast)
        with pytest.raises(
            FileNotFoundError,
            match=rf"cannot read its model: no file or directory at modelPath '{missing}'",
        ):
            stage.transform(features_df)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("corrupt.pb", b"\x0a\xff\xff\xff garbage", "Cannot load the graphdef model from .*corrupt"
         r"\.pb: not a serialized GraphDef"),
        ("corrupt.keras", b"PK\x03\x04 not really a zip", "Cannot load the keras model from "
         r".*corrupt\.keras: not a loadable Keras file"),
    ],
)  # fmt: skip
def test_corrupt_model_file(features_df, folder, name, content, message):
    path = folder / name
    path.write_bytes(content)
    with pytest.raises(ModelSourceError, match=message):
        TFGraphTransformer(modelPath=str(path), inputCol="f").transform(features_df)


def test_mapping_and_output_errors(features_df, saved_model, keras_files, seed_graph):
    _, path = saved_model
    with pytest.raises(ValueError, match=r"The model has 2 inputs, so TFGraphTransformer needs "):
        TFGraphTransformer(modelPath=path, inputCol="f").transform(features_df)
    stage = TFGraphTransformer(
        modelPath=path, signatureName="arrays", inputMapping={"f": "a"}, outputMapping={"diff": "d"}
    )
    with pytest.raises(ValueError, match=r"no column is mapped to \['b'\]"):
        stage.transform(features_df)
    with pytest.raises(ValueError, match=r"would overwrite existing column\(s\) \['id'\]"):
        TFGraphTransformer(
            modelPath=keras_files["mlp.keras"], inputCol="f", outputCol="id"
        ).transform(features_df)
    _, pb, _ = seed_graph
    with pytest.raises(
        ValueError, match=r"has 3 labels, but column 'scores' \(tensor 'softmax:0'\) holds 4"
    ):
        TFGraphTransformer(
            modelPath=pb, inputMapping={"c": "DecodeJpeg/contents"}, labels=LABELS[:3],
            outputMapping={"softmax:0": "scores"},
        ).transform(features_df.withColumn("c", F.lit(bytearray(b"x"))))  # fmt: skip


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"batchSize": 0}, ValueError, r"The 'batchSize' param of TFGraphTransformer must be an "
         r"int in \[1, inf\)\. Got 0 instead\."),
        ({"topK": 0}, ValueError, r"The 'topK' param of TFGraphTransformer must be an int in "
         r"\[1, inf\)\. Got 0 instead\."),
        ({"handleInvalid": "ignore"}, ValueError, r"The 'handleInvalid' param of "
         r"TFGraphTransformer must be one of 'error', 'skip', 'keep'\. Got 'ignore' instead\."),
        ({"imageSize": [224]}, ValueError, r"The 'imageSize' param of TFGraphTransformer must "
         r"be empty or \[height, width\] with ints >= 1\. Got \[224\] instead\."),
        ({"outputTypes": {"p": "matrix"}}, ValueError, r"The 'outputTypes' param"),
        ({"modelFormat": "onnx"}, ValueError, r"The 'modelFormat' param of TFGraphTransformer "
         r"must be one of 'auto', 'graphdef', 'savedmodel', 'keras'\. Got 'onnx' instead\."),
        ({"modelPath": ""}, ValueError, r"TFGraphTransformer has no model: set modelPath"),
    ],
)  # fmt: skip
def test_param_errors_before_any_job(features_df, keras_files, params, error, message):
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    stage._set(**params)
    with pytest.raises(error, match=message):
        stage.transform(features_df)


def test_mapping_params_reject_non_string_values():
    with pytest.raises(TypeError, match=r"Could not convert \{'f': 3\} to a dict of str -> str"):
        TFGraphTransformer(inputMapping={"f": 3})


# -- persistence -------------------------------------------------------------------------------


def _roundtrip(stage, path):
    stage.write().overwrite().save(path)
    return TFGraphTransformer.load(path)


@pytest.mark.parametrize("kind", ["graphdef", "keras", "h5", "savedmodel"])
def test_built_from_bytes_saves_the_model_inside_its_folder(
    spark, features_df, features, tmp_path, kind, batched_graph, keras_files, saved_model, mlp
):
    graph_def = batched_graph[0]
    if kind == "graphdef":
        stage = TFGraphTransformer.fromGraphDef(graph_def, inputMapping={"f": "x:0"})
        stored, expected = "model.pb", mlp(features).numpy()
    elif kind in ("keras", "h5"):
        name = "mlp.keras" if kind == "keras" else "mlp.h5"
        with open(keras_files[name], "rb") as handle:
            stage = TFGraphTransformer.fromBytes(handle.read(), inputCol="f")
        stored, expected = f"model.{'keras' if kind == 'keras' else 'h5'}", mlp(features).numpy()
    else:
        stage = TFGraphTransformer.fromSavedModel(
            saved_model[1], signatureName="arrays", inputMapping={"f": "a", "f2": "b"},
            outputMapping={"total": "prediction"},
        )  # fmt: skip
        stored, expected = "saved_model", (features * features).sum(axis=1)
    df = features_df.withColumn("f2", F.col("f")) if kind == "savedmodel" else features_df
    loaded = _roundtrip(stage.setBatchSize(5), str(tmp_path / kind))
    assert os.path.exists(tmp_path / kind / stored)
    assert loaded.uid == stage.uid
    assert loaded.modelBytes is not None
    assert loaded.getBatchSize() == 5 and loaded.getInputMapping() == stage.getInputMapping()
    _close([r["prediction"] for r in _by_id(loaded.transform(df))], expected)
    if kind == "savedmodel":  # the stored SavedModel is usable on its own
        import tensorflow as tf

        reloaded = tf.saved_model.load(str(tmp_path / kind / stored))
        assert sorted(reloaded.signatures) == ["arrays", "serving_default"]


def test_path_based_transformer_saves_params_in_a_pipeline(
    features_df, features, tmp_path, seed_graph, keras_files, mlp
):
    stage = TFGraphTransformer(
        modelPath=keras_files["mlp.keras"], inputCol="f", outputCol="scores", labels=LABELS,
        topK=2, outputTypes={"scores": "vector"},
    )  # fmt: skip
    pipeline = PipelineModel(stages=[stage])
    path = str(tmp_path / "pipeline")
    pipeline.write().overwrite().save(path)
    loaded = PipelineModel.load(path)
    (copy,) = loaded.stages
    assert isinstance(copy, TFGraphTransformer) and copy.modelBytes is None
    assert copy.getOutputTypes() == {"scores": "vector"} and copy.getLabels() == LABELS
    stage_dir = os.path.join(path, "stages", os.listdir(os.path.join(path, "stages"))[0])
    assert sorted(os.listdir(stage_dir)) == ["metadata"]
    before = _by_id(pipeline.transform(features_df))
    after = _by_id(loaded.transform(features_df))
    assert before == after
    _close([r["scores"].toArray() for r in after], mlp(features).numpy())


# -- contract ------------------------------------------------------------------------------------


def test_params_documented_settable_and_copied(keras_files):
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    for param in stage.params:
        assert param.doc, param.name
        suffix = param.name[0].upper() + param.name[1:]
        assert callable(getattr(stage, f"get{suffix}")), param.name
        assert callable(getattr(stage, f"set{suffix}")), param.name
    stage.setTopK(3).setInputShapes({"f": [4]}).setLabels(["a"])
    copied = stage.copy({stage.batchSize: 7})
    assert copied.getTopK() == 3 and copied.getInputShapes() == {"f": [4]}
    assert copied.getBatchSize() == 7 and stage.getBatchSize() == 256
    assert copied.uid == stage.uid
    built = TFGraphTransformer.fromBytes(b"\x0a\x00", modelFormat="graphdef")
    assert built.copy().modelBytes == b"\x0a\x00"


def test_import_sparktf_does_not_import_tensorflow():
    code = (
        "import sys, sparktf; from sparktf.transformer import TFGraphTransformer; "
        "TFGraphTransformer(modelPath='m.pb'); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_saved_model_folder_can_be_copied_and_detected(tmp_path, saved_model, spark, features):
    _, path = saved_model
    target = str(tmp_path / "copy_of_model")
    shutil.copytree(path, target)
    df = spark.createDataFrame([(features[0].tolist(), features[1].tolist())], ["a", "b"])
    stage = TFGraphTransformer(
        modelPath=target, signatureName="arrays", inputMapping={"a": "a", "b": "b"},
        outputMapping={"diff": "d"},
    )  # fmt: skip
    _close(stage.transform(df).first()["d"], features[0] - features[1])


# -- jobs that fail (last: a failed task ends its Python worker, later jobs start new ones)


def test_invalid_image_error_names_the_path(mixed_images, keras_files):
    stage = TFGraphTransformer(modelPath=keras_files["cnn.keras"], inputCol="content")
    with pytest.raises(
        Exception,
        match=r"TFGraphTransformer cannot use the input \('content'\) of the row with path "
        r"'broken.jpg': cannot decode image: .* Set handleInvalid='skip'",
    ):
        stage.transform(mixed_images.filter("path != 'null'")).collect()


def test_shape_mismatch_fails_the_job_before_any_output(spark, keras_files, tmp_path):
    df = spark.createDataFrame([([1.0, 2.0, 3.0, 4.0, 5.0],)], "f array<double>")
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    target = str(tmp_path / "out")
    with pytest.raises(
        Exception,
        match=r"shape mismatch for column 'f' feeding tensor 'feat': expected rows of shape "
        r"\[4\] \(4 values\), got a row of 5 values",
    ):
        stage.transform(df).write.parquet(target)
    assert not os.path.exists(os.path.join(target, "_SUCCESS"))


def test_graph_that_decodes_images_itself_names_the_rejected_row(mixed_images, seed_graph):
    _, path, _ = seed_graph
    stage = TFGraphTransformer(
        modelPath=path,
        inputMapping={"content": "DecodeJpeg/contents:0"},
        outputMapping={"softmax:0": "scores"},
    )
    with pytest.raises(
        Exception,
        match=r"cannot use the input \('content'\) of the row with path 'broken.jpg': the model "
        r"rejected it: ",
    ):
        stage.transform(mixed_images.filter("path != 'null'")).collect()


# -- non-finite scores -------------------------------------------------------------------------


def _overflowing(softmax: bool):
    """A network whose first score overflows to +inf for rows summing to more than ~1.1."""
    import keras

    dense = keras.layers.Dense(3, activation="softmax" if softmax else None, name="scores")
    model = keras.Sequential([keras.Input((4,), name="f"), dense])
    kernel = np.zeros((4, 3), np.float32)
    kernel[:, 0] = 3e38
    dense.set_weights([kernel, np.array([0.0, 0.5, 0.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def overflow_df(spark):
    rows = [(0, [1.0, 1.0, 1.0, 1.0]), (1, [0.0, 0.0, 0.0, 0.0]), (2, [2.0, 0.0, 0.0, 1.0])]
    return spark.createDataFrame(rows, "id long, f array<float>")


def test_classification_model_with_infinite_logits_gives_probability_one(overflow_df, tf):
    from sparktf._loading import keras_to_bytes
    from sparktf.classification import TFClassificationModel

    model = TFClassificationModel._create(
        model_bytes=keras_to_bytes(_overflowing(softmax=False)),
        num_features=4, num_classes=3, outputs_logits=True, history={},
    )  # fmt: skip
    rows = _by_id(model.setFeaturesCol("f").transform(overflow_df))
    assert [r["prediction"] for r in rows] == [0.0, 1.0, 0.0]
    assert rows[0]["probability"].toArray().tolist() == [1.0, 0.0, 0.0]
    raw = rows[0]["rawPrediction"].toArray()  # centred log-probabilities, 0 counted as 1e-300
    np.testing.assert_allclose(raw, [460.517019, -230.258509, -230.258509], rtol=1e-6)
    assert rows[1]["probability"].toArray().sum() == pytest.approx(1.0)
    assert model.predictProbability(Vectors.dense([1.0] * 4)).toArray().tolist() == [1, 0, 0]
    nan_row = overflow_df.sparkSession.createDataFrame(
        [(3, [float("nan"), 0.0, 0.0, 0.0])], "id long, f array<float>"
    )
    with pytest.raises(Exception, match=r"non-finite scores .* for 1 of 4 rows in a batch"):
        model.transform(overflow_df.union(nan_row).coalesce(1)).collect()


def test_transformer_vector_output_with_nan_fails_clearly(overflow_df, tf):
    stage = TFGraphTransformer.fromKeras(
        _overflowing(softmax=True), inputCol="f", outputCol="p", outputTypes={"p": "vector"}
    )  # a softmax over +inf gives NaN
    with pytest.raises(Exception, match=r"gave NaN for 2 of 3 rows .* cannot hold NaN"):
        stage.transform(overflow_df.coalesce(1)).collect()
    as_array = stage.copy().setOutputTypes({"p": "array"})
    rows = _by_id(as_array.transform(overflow_df))
    assert np.isnan(rows[0]["p"][0]) and not np.isnan(rows[1]["p"][0])  # an array keeps NaN
