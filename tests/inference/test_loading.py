"""Loading models in a Python worker: temporary folders of unpacked SavedModels, safe loading.

These tests run in the test process itself (no Spark): it loads models exactly as a Python worker
does, through sparktf.inference._sources.cached_model and the per-process cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sparktf import _loading
from sparktf.inference._sources import cached_model


def _savedmodel_bytes(tf, folder, scale: float) -> bytes:
    """The zip of a small SavedModel: x [?, 2] -> {"y": x * scale}."""
    from sparktf.inference._formats import zip_files
    from sparktf.inference._model_files import local_files

    module = tf.Module()
    module.scale = tf.Variable(scale)
    module.serve = tf.function(
        lambda x: {"y": x * module.scale}, input_signature=[tf.TensorSpec([None, 2], tf.float32)]
    )
    path = os.path.join(folder, f"scale-{scale}")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return zip_files(local_files(path))


@pytest.fixture(scope="module")
def savedmodels(tf, tmp_path_factory):
    folder = tmp_path_factory.mktemp("savedmodels")
    return [_savedmodel_bytes(tf, str(folder), float(s)) for s in (2, 3, 4)]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temporary directory of this test's own, for this process and the ones it starts."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _load(data: bytes, key: str):
    spec = {"format": "savedmodel", "key": key, "path": None, "signature": "serving_default"}
    return cached_model(spec, lambda: data)


def test_savedmodel_folder_lives_as_long_as_the_cached_model(savedmodels, private_tmp, monkeypatch):
    monkeypatch.setattr(_loading, "MODEL_CACHE", _loading.ModelCache(capacity=2))
    folders = []
    for i, data in enumerate(savedmodels):
        model = _load(data, f"sm-{i}")
        out = model.runner(["x"], ["y"])([np.ones((1, 2), np.float32)])[0]
        assert out.tolist() == [[i + 2.0, i + 2.0]]
        folders.append(set(os.listdir(private_tmp)))
    first = folders[0]
    assert len(first) == 1
    left = set(os.listdir(private_tmp))
    assert len(left) == 2 and not first & left  # the evicted model's folder is gone
    _loading.MODEL_CACHE.clear()
    assert os.listdir(private_tmp) == []


_WORKER = """
import os, sys, time
from sparktf.inference._sources import cached_model
data = open(sys.argv[1], "rb").read()
spec = {"format": "savedmodel", "key": sys.argv[2], "path": None, "signature": "serving_default"}
cached_model(spec, lambda: data)
print("loaded", flush=True)
if sys.argv[2] == "dead":
    os._exit(0)  # how a pyspark worker leaves: no cleanup at exit
time.sleep(120)
"""


def test_folders_of_dead_workers_are_removed_and_live_ones_kept(savedmodels, private_tmp, tmp_path):
    source = tmp_path / "model.zip"
    source.write_bytes(savedmodels[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(_loading.__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def worker(kind):
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(source), kind],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    live = worker("live")
    try:
        assert live.stdout.readline().strip() == "loaded"
        kept = set(os.listdir(private_tmp))
        dead = worker("dead")
        assert dead.stdout.readline().strip() == "loaded" and dead.wait(60) == 0
        stale = set(os.listdir(private_tmp)) - kept
        assert len(kept) == 1 and len(stale) == 1
        _load(savedmodels[1], "stale-check")  # unpacking a model cleans up first
        left = set(os.listdir(private_tmp))
        assert kept <= left and not stale & left and len(left) == 2
    finally:
        live.kill()
        live.wait()
        _loading.MODEL_CACHE.clear()


# -- safe loading ------------------------------------------------------------------------------


@pytest.fixture
def planted(tf, tmp_path):
    """Keras files whose Lambda layer writes a marker file whenever its code runs."""
    import keras

    marker = str(tmp_path / "marker")

    def build():
        inputs = keras.Input((4,), name="f")
        touched = keras.layers.Lambda(lambda x: x + 0.0 * len(open(marker, "a").name))(inputs)  # noqa: SIM115
        return keras.Model(inputs, touched)

    model = build()
    paths = {}
    for suffix in ("keras", "h5"):
        paths[suffix] = str(tmp_path / f"planted.{suffix}")
        model.save(paths[suffix])
    os.remove(marker)  # building and saving the model ran the lambda
    return paths, marker


@pytest.fixture
def rows(spark):
    return spark.createDataFrame([(1, [1.0, 2.0, 3.0, 4.0])], "id long, f array<float>")


@pytest.mark.parametrize("suffix", ["keras", "h5"])
@pytest.mark.parametrize("broadcast", [True, False])
def test_lambda_layer_is_refused_unless_the_driver_opts_in(
    planted, rows, monkeypatch, suffix, broadcast
):
    from sparktf import TFGraphTransformer
    from sparktf.errors import UnsafeModelError

    paths, marker = planted
    monkeypatch.delenv("SPARKTF_UNSAFE_LOADING", raising=False)
    stage = TFGraphTransformer(modelPath=paths[suffix], inputCol="f", broadcastModel=broadcast)
    with pytest.raises(UnsafeModelError, match=r"Python code .* SPARKTF_UNSAFE_LOADING=1"):
        stage.transform(rows)
    from_bytes = TFGraphTransformer.fromBytes(Path(paths[suffix]).read_bytes(), inputCol="f")
    with pytest.raises(UnsafeModelError):
        from_bytes.transform(rows)
    assert not os.path.exists(marker)
    monkeypatch.setenv("SPARKTF_UNSAFE_LOADING", "1")
    assert stage.transform(rows).first()["prediction"] == [1.0, 2.0, 3.0, 4.0]
    assert os.path.exists(marker)


def test_saved_classification_model_with_lambda_is_refused(planted, monkeypatch):
    from sparktf.classification import TFClassificationModel
    from sparktf.errors import UnsafeModelError

    paths, marker = planted
    monkeypatch.delenv("SPARKTF_UNSAFE_LOADING", raising=False)
    model = TFClassificationModel._create(Path(paths["keras"]).read_bytes(), 4, 4, True, {})
    with pytest.raises(UnsafeModelError, match="SPARKTF_UNSAFE_LOADING"):
        model.keras_model()
    assert not os.path.exists(marker)


# -- freezing a Keras model --------------------------------------------------------------------


def test_a_frozen_keras_model_gives_the_same_scores(tf, caplog):
    import keras

    from sparktf.inference._sources import KerasModel

    keras.utils.set_random_seed(5)
    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    network = keras.Model(inputs, keras.layers.Dense(5, name="probs")(x))
    network.layers[2].set_weights([np.random.RandomState(1).rand(8).astype(np.float32) + 0.5
                                   for _ in range(4)])  # fmt: skip
    images = np.random.RandomState(2).rand(7, 12, 12, 3).astype(np.float32)
    model = KerasModel(network)
    with caplog.at_level("WARNING", logger="sparktf"):
        frozen = model.runner(["image"], ["probs"], freeze=True)([images])[0]
    assert not caplog.records  # it was frozen: no fallback
    plain = model.runner(["image"], ["probs"])([images])[0]
    np.testing.assert_allclose(frozen, network(images).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain, network(images).numpy(), rtol=1e-5, atol=1e-6)


def test_a_keras_model_that_cannot_be_frozen_runs_unfrozen_with_a_warning(tf, caplog):
    import keras

    from sparktf.inference._sources import KerasModel

    inputs = keras.Input((1,), dtype="string", name="word")
    lookup = keras.layers.StringLookup(vocabulary=["a", "b"], name="ids")(inputs)
    network = keras.Model(inputs, lookup)
    model = KerasModel(network)
    words = np.array([["a"], ["b"], ["c"]], dtype=object)
    with caplog.at_level("WARNING", logger="sparktf"):
        ids = model.runner(["word"], ["ids"], freeze=True)([words])[0]
    assert ids.ravel().tolist() == [1, 2, 0]
    assert any("runs the Keras model unfrozen" in r.getMessage() for r in caplog.records)
