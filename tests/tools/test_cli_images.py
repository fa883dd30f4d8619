"""``sparktf tune --images DIR --base-model FILE``, then ``sparktf label`` by class name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sparktf import TFClassificationModel
from sparktf.cli import main
from sparktf.datasets import load_image_folder

COLOURS = {"blue": (30, 60, 200), "green": (40, 160, 40), "red": (210, 30, 30)}


def _folders(root, per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = tuple(int(v) for v in rng.integers(20, 40, 2))
            noise = rng.normal(0, 20, (size[1], size[0], 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Training and test folders of three colour classes, and a small base network file."""
    import keras

    root = tmp_path_factory.mktemp("cli_images")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    base = keras.Model(inputs, keras.layers.Dense(3, name="old_head")(x))
    # pretrained on colours: its pooled features tell them apart
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    colours = np.array(list(COLOURS.values()), dtype=np.float32)[labels]
    pixels = np.clip(colours[:, None, None, :] + rng.normal(0, 20, (240, 16, 16, 3)), 0, 255)
    base.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    base.fit(pixels, labels, epochs=20, batch_size=32, verbose=0)
    base.save(root / "base.keras")
    return _folders(root / "train", 12, 1), _folders(root / "test", 4, 2), root / "base.keras"


def test_tune_fine_tunes_a_base_on_a_folder_and_label_names_the_classes(
    spark, photos, tmp_path, capsys
):
    train, test, base = photos
    output = tmp_path / "tuned"
    argv = [
        *("tune", "--images", str(train), "--test-images", str(test), "--base-model", str(base)),
        *("--image-scaling", "none", "--trainable-layers", "0,-1", "--hidden-layers", "none"),
        *("--epochs", "4", "--learning-rates", "0.05", "--validator", "tvs", "-q"),
        *("--output", str(output)),
    ]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    report = pd.read_csv(output / "report.csv")
    assert sorted(report["trainableLayers"]) == [-1, 0]  # searched
    accuracy = float(out.split("Test accuracy of the best model: ")[1].split()[0])
    assert accuracy >= 0.9, out
    assert (output / "labels.txt").read_text() == "blue\ngreen\nred\n"

    # the tuned network scales its pixels itself: label reads it as a plain Keras file
    labelled = tmp_path / "labelled.parquet"
    argv = [
        *("label", f"{test}/*/*.png", "--model", str(output / "best_model.keras")),
        *("--labels", str(output / "labels.txt"), "--image-scaling", "none", "--top-k", "1"),
        *("-q", "--output", str(labelled)),
    ]
    code = main(argv)
    assert code == 0, capsys.readouterr()
    rows = spark.read.parquet(str(labelled)).collect()
    assert len(rows) == 12
    right = sum(r["topK"][0]["label"] in r["path"].rsplit("/", 1)[1] for r in rows)
    assert right >= 11, [(r["path"], r["topK"]) for r in rows]
    # the network outputs logits: label shows their softmax, whose top label is the model's
    for row in rows:
        assert sum(row["scores"]) == pytest.approx(1.0, abs=1e-4), row["scores"]
        assert min(row["scores"]) >= 0.0
        assert row["topK"][0]["score"] == pytest.approx(max(row["scores"]), abs=1e-6)
    names = (output / "labels.txt").read_text().split()
    model = TFClassificationModel.load(str(output / "best_model"))
    predicted = model.transform(load_image_folder(spark, str(test))).collect()
    by_name = {r["path"].rsplit("/", 1)[1]: names[int(r["prediction"])] for r in predicted}
    assert {r["path"].rsplit("/", 1)[1]: r["topK"][0]["label"] for r in rows} == by_name


def test_tune_checks_the_fine_tuning_options_before_spark(capsys, tmp_path):
    code = main(["tune", "--trainable-layers", "0,-1", "--output", str(tmp_path / "o")])
    assert code == 2
    assert "--trainable-layers and --fine-tune-epochs need --base-model" in capsys.readouterr().err
    code = main(["tune", "--images", str(tmp_path), "--output", str(tmp_path / "o")])
    assert code == 2
    assert "--images needs --image-size, or --base-model" in capsys.readouterr().err
    code = main(["tune", "--trainable-layers", "-2", "--output", str(tmp_path / "o")])
    assert code == 2
    assert "every value must be >= -1" in capsys.readouterr().err
