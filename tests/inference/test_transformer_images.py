"""TFGraphTransformer on images: encoded bytes, paths the workers read, Spark image structs,
a graph that decodes JPEGs itself, and invalid images kept or skipped (handleInvalid)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image
from pyspark.sql import functions as F
from transformer_support import LABELS, SIDE, _by_id, _by_name, _close

from sparktf import TFGraphTransformer

pytest_plugins = ("transformer_fixtures",)

# -- the reference and the photographs -----------------------------------------------------


def _pixels(data: bytes, channels: str = "RGB", scaled: bool = True) -> np.ndarray:
    """Reference preprocessing: Pillow decode (of a JPEG at the reduced scale Pillow's draft
    picks, unless not ``scaled``), bilinear resize, scale to [0, 1]."""
    image = Image.open(io.BytesIO(data))
    if scaled:
        image.draft(channels, (SIDE, SIDE))
    image = image.convert(channels).resize((SIDE, SIDE), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def photo_files(spark, photos):
    source, _ = photos
    return spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(source).cache()


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
