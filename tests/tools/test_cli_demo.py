"""``sparktf demo``: run in a process of its own as a user runs it (the ``demo_run`` job of
tests/conftest.py), quiet as it starts, and the image model it builds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest_plugins = ("cli_fixtures",)
pytestmark = pytest.mark.usefixtures("cwd")


# What TensorFlow's C++ logging (absl), oneDNN, log4j and the JVM print when they start.
STARTUP_NOISE = re.compile(
    r"absl::InitializeLog|^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|oneDNN|cpu_feature_guard|"
    r"To enable the following instructions|log4j|Using incubator modules|"
    r"Setting default log level|To adjust logging level|NativeCodeLoader|loopback address"
)


def startup_noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if STARTUP_NOISE.search(line)]


def test_the_noise_pattern_finds_what_tensorflow_and_the_jvm_print():
    seen = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795796134.237473   21345 port.cc:153] oneDNN custom operations are on.
WARNING: Using incubator modules: jdk.incubator.vector
Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties
Setting default log level to "WARN".
To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).
26/11/27 16:17:03 WARN NativeCodeLoader: Unable to load native-hadoop library
26/11/27 16:17:03 WARN Utils: Your hostname, box, resolves to a loopback address: 127.0.1.1
16:17:17 fold 1 of 2: 4/4 models trained, 23.1s"""
    assert len(startup_noise(seen)) == 8


def test_demo_quick_tunes_reports_and_labels_images_quietly(spark, demo_run):
    """``sparktf demo --quick --images 4`` in a process of its own, as a user runs it (the
    ``demo_run`` job of tests/conftest.py, with TF_CPP_MIN_LOG_LEVEL unset)."""
    from PIL import Image

    output = Path(demo_run["output"])
    out, err = demo_run["stdout"], demo_run["stderr"]
    assert startup_noise(err) == [], err
    assert "Tuning report (accuracy, best first):" in out
    assert len(pd.read_csv(output / "report.csv")) == 4
    accuracy = float(out.split("Test accuracy of the best model: ")[1].split()[0])
    assert accuracy > 0.5
    assert (output / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert (output / "labels.txt").read_text() == "".join(f"{d}\n" for d in range(10))
    images = sorted((output / "images").glob("*.png"))
    assert len(images) == 4
    with Image.open(images[0]) as image:
        assert (image.mode, image.size) == ("L", (32, 32))
    labelled = spark.read.parquet(str(output / "labels.parquet")).collect()
    assert sorted(os.path.basename(r["path"]) for r in labelled) == [p.name for p in images]
    assert all(len(r["topK"]) == 3 for r in labelled)
    lines = [line for line in out.splitlines() if line.startswith("  digit_")]
    assert len(lines) == 4
    right = sum(
        line.split("true ")[1].split(",")[0] == line.split("top 3: ")[1].split(" ")[0]
        for line in lines
    )
    assert f"{right} of 4 images labelled correctly" in out


def test_demo_image_model_reproduces_the_classifier(spark, tmp_path):
    """The wrapper the demo builds gives the classifier's own probabilities for a digit image."""
    import keras
    from PIL import Image

    from sparktf import TFClassifier
    from sparktf.cli import digit_image_model, write_digit_images
    from sparktf.datasets import load_digits

    df = load_digits(spark).limit(300)
    model = TFClassifier(hiddenLayers=[16], epochs=2, learningRate=0.01).fit(df)
    rows = df.orderBy("image_id").limit(3).collect()
    pixels = [r["features"].toArray() for r in rows]
    paths = write_digit_images(pixels, [int(r["label"]) for r in rows], str(tmp_path))
    wrapper = digit_image_model(model)

    images = np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in paths])
    assert images.shape == (3, 32, 32)
    got = wrapper.predict(images, verbose=0)
    # The PNG holds round(pixel * 255 / 16) as 8 bits; the wrapper maps it back to 0..16.
    stored = np.round(np.stack(pixels) * 255 / 16) * 16 / 255
    logits = model.keras_model().predict(stored.astype(np.float32), verbose=0)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
