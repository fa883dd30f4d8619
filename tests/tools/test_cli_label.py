"""``sparktf label``: images in files, folders and Parquet labelled by a Keras file or a frozen
GraphDef.

Commands run in this process and reuse the suite's SparkSession (``get_spark`` returns the
active session), each in an empty working folder of its own (``cwd``).
"""

from __future__ import annotations

import glob
import os
import shutil

import numpy as np
import pytest
from cli_support import no_spark, run

pytest_plugins = ("cli_fixtures",)
pytestmark = pytest.mark.usefixtures("cwd")


SKLEARN_IMAGES = os.path.join(os.path.dirname(__import__("sklearn").__file__), "datasets", "images")


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """A Keras file: (16, 16, 3) in [0, 1] -> softmax over (dark, bright, middle)."""
    import keras

    folder = tmp_path_factory.mktemp("model")
    image = keras.Input(shape=(16, 16, 3))
    mean = keras.layers.GlobalAveragePooling2D()(image)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(image, dense(mean))
    # logits: dark = -10 m, bright = 10 m - 5, middle = 0 (for the per-channel mean m)
    dense.set_weights(
        [np.array([[-10, 10, 0]] * 3, dtype=np.float32) / 3, np.array([0, -5, 0], np.float32)]
    )
    path = folder / "colour.keras"
    model.save(path)
    labels = folder / "labels.txt"
    labels.write_text("dark\nbright\nmiddle\n")
    return str(path), str(labels)


def test_label_sklearn_photos_to_parquet(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    output = tmp_path / "labels"
    code, out, err = run(
        capsys,
        "label", os.path.join(SKLEARN_IMAGES, "*.jpg"),
        "--model", model,
        "--labels", labels,
        "--top-k", "2",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    rows = spark.read.parquet(str(output)).orderBy("path").collect()
    assert [os.path.basename(r["path"]) for r in rows] == ["china.jpg", "flower.jpg"]
    for row in rows:
        assert len(row["topK"]) == 2
        assert {e["label"] for e in row["topK"]} <= {"dark", "bright", "middle"}
        assert row["topK"][0]["score"] >= row["topK"][1]["score"]
        assert len(row["scores"]) == 3 and abs(sum(row["scores"]) - 1) < 1e-4
    assert "Wrote 2 rows to" in out
    assert "china.jpg: " in out and "flower.jpg: " in out


def test_label_decodes_jpegs_at_a_reduced_scale_unless_full_decode_and_can_freeze(
    spark, capsys, tmp_path, colour_model
):
    import keras

    from sparktf.image import decode_image

    model, labels = colour_model
    network = keras.saving.load_model(model)
    with open(os.path.join(SKLEARN_IMAGES, "china.jpg"), "rb") as handle:
        china = handle.read()
    for flags, scaled in (((), True), (("--full-decode",), False), (("--freeze",), True)):
        output = tmp_path / f"labels-{len(flags) and flags[0]}"
        code, _, err = run(
            capsys,
            "label", os.path.join(SKLEARN_IMAGES, "china.jpg"),
            "--model", model, "--labels", labels, "--output", str(output), *flags,
        )  # fmt: skip
        assert code == 0, err
        (row,) = spark.read.parquet(str(output)).collect()
        pixels = decode_image(china, (16, 16), scaled=scaled).astype(np.float32) / 255.0
        expected = network(pixels[None]).numpy()[0]
        np.testing.assert_allclose(row["scores"], expected, rtol=1e-5, atol=1e-6)


def test_label_by_path_reads_the_files_in_the_workers_with_the_same_scores(
    spark, capsys, tmp_path, colour_model
):
    model, labels = colour_model
    scores = {}
    for flags in ((), ("--by-path",)):
        output = tmp_path / f"labels{len(flags)}"
        argv = ["label", SKLEARN_IMAGES, "--model", model, "--labels", labels, *flags]
        code, out, err = run(capsys, *argv, "--output", str(output))
        assert code == 0, err
        assert "Wrote 2 rows to" in out
        table = spark.read.parquet(str(output)).orderBy("path").collect()
        assert [os.path.basename(r["path"]) for r in table] == ["china.jpg", "flower.jpg"]
        scores[flags] = {r["path"]: r["scores"] for r in table}
    assert scores[()].keys() == scores[("--by-path",)].keys()
    for path, expected in scores[()].items():
        np.testing.assert_allclose(scores[("--by-path",)][path], expected, rtol=1e-6)


def test_label_by_path_names_a_file_that_cannot_be_read(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(os.path.join(SKLEARN_IMAGES, "china.jpg"), folder / "china.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    argv = ["label", str(folder), "--model", model, "--labels", labels, "--by-path"]
    code, _, err = run(capsys, *argv, "--output", str(tmp_path / "out"))
    assert code == 1
    # the worker's own message, not Spark's first line ("An exception was thrown ...")
    message = err.splitlines()[-2]
    # the input is the path column: the worker opened the file itself
    prefix = "sparktf label: error: TFGraphTransformer cannot use the input ('path') of the row"
    assert message.startswith(prefix), err
    assert f"with path 'file:{folder / 'broken.jpg'}': cannot decode image" in message
    assert message.endswith("image file (12 bytes). Add --skip-invalid to drop such images.")
    code, out, err = run(capsys, *argv, "--skip-invalid", "--output", str(tmp_path / "kept"))
    assert code == 0, err
    (row,) = spark.read.parquet(str(tmp_path / "kept")).collect()
    assert os.path.basename(row["path"]) == "china.jpg"
    assert "Wrote 1 rows to" in out
    assert "Skipped 1 images that could not be read or decoded" in out
    os.remove(folder / "china.jpg")
    code, out, err = run(capsys, *argv, "--skip-invalid", "--output", str(tmp_path / "none"))
    assert code == 1
    assert err.splitlines()[-2] == (
        "sparktf label: error: none of the 1 images could be read or decoded (--skip-invalid "
        "dropped them all); run without --skip-invalid to see the first one's error"
    )


def test_label_packs_small_image_files_into_fewer_tasks_and_leaves_the_session_as_it_was(
    spark, capsys, tmp_path, colour_model
):
    from PIL import Image

    model, labels = colour_model
    folder = tmp_path / "small"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "0.png")
    for i in range(1, 200):
        shutil.copy(folder / "0.png", folder / f"{i}.png")
    key = "spark.sql.files.openCostInBytes"
    cores = spark.sparkContext.defaultParallelism
    assert spark.conf.get(key, None) is None
    argv = ["label", str(folder), "--model", model, "--labels", labels, "--show", "0"]

    def tasks(output: str) -> int:  # one Parquet file per task of the labelling job
        code, out, err = run(capsys, *argv, "--output", output)
        assert code == 0 and "Wrote 200 rows" in out, err
        return len(glob.glob(os.path.join(output, "*.parquet")))

    packed = tasks(str(tmp_path / "packed"))
    assert spark.conf.get(key, None) is None  # left as it was
    spark.conf.set(key, "4194304")  # set by the user (Spark's default): the command keeps it
    try:
        unpacked = tasks(str(tmp_path / "unpacked"))
        assert spark.conf.get(key) == "4194304"
    finally:
        spark.conf.unset(key)
    assert packed <= cores < unpacked


def test_label_with_the_flat_network_of_tune_points_to_the_image_model(spark, capsys, tmp_path):
    import keras

    flat = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(10)])
    flat.save(tmp_path / "best_model.keras")
    (tmp_path / "labels.txt").write_text("".join(f"{d}\n" for d in range(10)))
    code, _, err = run(
        capsys,
        "label", SKLEARN_IMAGES,
        "--model", str(tmp_path / "best_model.keras"),
        "--labels", str(tmp_path / "labels.txt"),
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"sparktf label: error: --model {tmp_path / 'best_model.keras'} ")
    assert "takes flat feature vectors (input shape [None, 64]), not images" in message
    assert "digits_image_model.keras that 'sparktf demo' writes" in message
    assert not (tmp_path / "out").exists()


def test_label_folder_to_csv_and_overwrite(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    output = tmp_path / "labels_csv"
    argv = ["label", SKLEARN_IMAGES, "--model", model, "--labels", labels, "--top-k", "3"]
    code, _, err = run(capsys, *argv, "--format", "csv", "--output", str(output))
    assert code == 0, err
    table = spark.read.option("header", "true").csv(str(output)).orderBy("path").toPandas()
    assert len(table) == 2  # README.txt and __init__.py in the folder are not images
    for text in table["topK"]:
        entries = [entry.split(":") for entry in text.split(";")]
        assert sorted(label for label, _ in entries) == ["bright", "dark", "middle"]
        assert all(0.0 <= float(score) <= 1.0 for _, score in entries)
    code, _, err = run(capsys, *argv, "--output", str(output))
    assert code == 2
    assert err == (
        f"sparktf label: error: --output {output} already exists (add --overwrite to replace it)\n"
    )


def test_label_parquet_of_image_bytes(spark, capsys, tmp_path, colour_model):
    model, labels = colour_model
    source = str(tmp_path / "images.parquet")
    rows = []
    for name in ("china.jpg", "flower.jpg"):
        with open(os.path.join(SKLEARN_IMAGES, name), "rb") as handle:
            rows.append((name, bytearray(handle.read())))
    spark.createDataFrame(rows, "name string, bytes binary").write.parquet(source)
    output = tmp_path / "out"
    code, _, err = run(
        capsys,
        "label", source,
        "--image-col", "bytes",
        "--path-col", "name",
        "--model", model,
        "--labels", labels,
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    result = spark.read.parquet(str(output)).orderBy("name").collect()
    assert [r["name"] for r in result] == ["china.jpg", "flower.jpg"]
    assert all(len(r["topK"]) == 3 for r in result)  # top-5 asked, 3 labels exist
    code, _, err = run(
        capsys, "label", source, "--image-col", "pixels", "--model", model, "--labels", labels,
        "--output", str(tmp_path / "other"),
    )  # fmt: skip
    assert code == 2
    assert "--image-col 'pixels' is not a column of" in err


def test_label_no_matching_images(capsys, monkeypatch, tmp_path, colour_model):
    no_spark(monkeypatch)  # found before Spark starts
    model, labels = colour_model
    pattern = str(tmp_path / "*.png")
    code, _, err = run(
        capsys, "label", "-q", pattern, "--model", model, "--labels", labels,
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert (code, err) == (2, f"sparktf label: error: no file matches {pattern}\n")


def test_label_with_a_frozen_graphdef(spark, capsys, tmp_path, colour_model):
    """A frozen graph taking ONE encoded JPEG (like the 2016 Inception graph) and tensor names."""
    import tensorflow as tf

    _, labels = colour_model
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name="contents")
        image = tf.cast(tf.io.decode_jpeg(contents, channels=3), tf.float32) / 255.0
        mean = tf.reduce_mean(image, axis=[0, 1, 2])  # one number: overall brightness
        logits = tf.stack([-10.0 * mean, 10.0 * mean - 5.0, tf.constant(0.0)])
        tf.nn.softmax(tf.expand_dims(logits, 0), name="softmax")
    model = tmp_path / "frozen.pb"
    model.write_bytes(graph.as_graph_def().SerializeToString())
    output = tmp_path / "out"
    code, out, err = run(
        capsys,
        "label", SKLEARN_IMAGES,
        "--model", str(model),
        "--input-tensor", "contents:0",
        "--output-tensor", "softmax:0",
        "--labels", labels,
        "--top-k", "1",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    rows = spark.read.parquet(str(output)).orderBy("path").collect()
    for row, name in zip(rows, ("china.jpg", "flower.jpg"), strict=True):
        with open(os.path.join(SKLEARN_IMAGES, name), "rb") as handle:
            pixels = tf.io.decode_jpeg(handle.read(), channels=3).numpy() / 255.0
        m = float(pixels.mean())
        logits = np.array([-10 * m, 10 * m - 5, 0.0])
        expected = np.exp(logits) / np.exp(logits).sum()
        np.testing.assert_allclose(row["scores"], expected, rtol=1e-4)
        assert row["topK"][0]["label"] == ["dark", "bright", "middle"][int(np.argmax(expected))]
        assert f"{name}: {row['topK'][0]['label']} (" in out
