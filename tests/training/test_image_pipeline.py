"""The image side of TFClassifier's training, below Spark: the scaling layers at the network's
input, the standardization adapted on the training pixels, and the workers' shards of an image
column."""

from __future__ import annotations

import numpy as np
import pytest
from image_training_support import FAST

from sparktf.training._plans import TrainingData

pytest_plugins = ("image_training_fixtures",)


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
