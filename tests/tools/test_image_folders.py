"""sparktf.datasets.load_image_folder: a folder with one subfolder per class, as paths (or bytes)
and label indices in Keras' order, with the class names in the label's metadata."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sparktf.datasets import class_names, load_image_folder


def _encoded(fmt: str, seed: int) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 255, size=(8, 8, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture()
def folder(tmp_path):
    """photos/: 'tulip' (2 JPEGs, one .JPG, one in a nested folder), 'daisy' (a PNG and a
    .jpeg), 'rose c++' (a PNG), plus files that are not images and a file at the top."""
    root = tmp_path / "photos"
    files = {
        "tulip/a.jpg": _encoded("JPEG", 1),
        "tulip/B.JPG": _encoded("JPEG", 2),
        "tulip/more/c.jpg": _encoded("JPEG", 3),
        "daisy/d.png": _encoded("PNG", 4),
        "daisy/e.jpeg": _encoded("JPEG", 5),
        "rose c++/f.png": _encoded("PNG", 6),
        "daisy/notes.txt": b"not an image",
        "top.jpg": _encoded("JPEG", 7),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root, files


def _by_name(df, root):
    return {
        row["path"].split(str(root) + "/", 1)[1].replace("%20", " "): row for row in df.collect()
    }


def test_classes_in_sorted_order_label_the_images_of_their_folders(spark, folder):
    root, _ = folder
    df = load_image_folder(spark, str(root))
    assert df.columns == ["path", "label"]
    assert dict(df.dtypes)["label"] == "double"
    assert class_names(df) == ["daisy", "rose c++", "tulip"]
    labels = {name: row["label"] for name, row in _by_name(df, root).items()}
    assert labels == {
        "daisy/d.png": 0.0,
        "daisy/e.jpeg": 0.0,
        "rose c++/f.png": 1.0,
        "tulip/B.JPG": 2.0,
        "tulip/a.jpg": 2.0,
        "tulip/more/c.jpg": 2.0,
    }


def test_content_option_gives_the_encoded_bytes_and_labels_file_the_names(spark, folder, tmp_path):
    from sparktf.image import parse_labels

    root, files = folder
    labels_file = tmp_path / "labels.txt"
    df = load_image_folder(spark, f"file:{root}/", content=True, labels_file=str(labels_file))
    assert df.columns == ["path", "content", "label"]
    rows = _by_name(df, root)
    assert len(rows) == 6
    for name, row in rows.items():
        assert bytes(row["content"]) == files[name]
    assert parse_labels(labels_file.read_text()) == ["daisy", "rose c++", "tulip"]
    again = load_image_folder(spark, f"{root}/tulip/..")  # the same folder, by another name
    assert sorted(again.collect()) == sorted(df.select("path", "label").collect())


def test_a_missing_folder_or_a_file_is_refused(spark, folder):
    root, _ = folder
    with pytest.raises(FileNotFoundError, match=r"load_image_folder: no folder at '.*nowhere'"):
        load_image_folder(spark, str(root / "nowhere"))
    with pytest.raises(ValueError, match=r"one subfolder per class\. Got the file '.*top\.jpg'"):
        load_image_folder(spark, str(root / "top.jpg"))


def test_a_folder_without_class_folders_is_refused(spark, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.png").write_bytes(_encoded("PNG", 8))
    with pytest.raises(ValueError, match=r"one subfolder per class in '.*flat'; it has no"):
        load_image_folder(spark, str(flat))


@pytest.mark.parametrize("empty", ["only text", "nothing"])
def test_a_class_folder_without_images_is_refused(spark, folder, empty):
    root, _ = folder
    (root / "lily").mkdir()
    if empty == "only text":
        (root / "lily" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"the class folder\(s\) \['lily'\] of .* hold no image"):
        load_image_folder(spark, str(root))


def test_a_folder_of_two_colours_trains_the_featurizer_pipeline_by_path(spark, tf, tmp_path):
    import keras
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression

    from sparktf import TFGraphTransformer

    rng = np.random.RandomState(3)
    for i in range(24):
        name, channel = ("blue", 2) if i % 2 else ("red", 0)
        pixels = rng.randint(0, 90, size=(16, 16, 3))
        pixels[..., channel] += 150
        (tmp_path / name).mkdir(exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / name / f"{i}.png")
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="probs")(x))
    model.save(str(tmp_path / "cnn.keras"))

    df = load_image_folder(spark, str(tmp_path))  # cnn.keras at the top is ignored
    assert class_names(df) == ["blue", "red"]
    featurizer = TFGraphTransformer(
        modelPath=str(tmp_path / "cnn.keras"),
        inputCol="path",
        outputMapping={"pool": "features"},
        outputTypes={"features": "vector"},
    )
    fitted = Pipeline(stages=[featurizer, LogisticRegression(regParam=0.01)]).fit(df)
    rows = fitted.transform(df).select("label", "prediction").collect()
    assert len(rows) == 24
    assert np.mean([r["label"] == r["prediction"] for r in rows]) >= 0.95
