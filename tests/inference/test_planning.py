"""Planning a transform where the driver has no TensorFlow: the model's tensors are learned in
the Python workers, with the same answers and the same errors as on the driver.

The suite's process has TensorFlow loaded, so it plans on the driver; ``on_workers`` makes it
plan as a driver without TensorFlow does. One test reads a driver that never imports
TensorFlow, run in a process of its own in the background (tests/jobs/plan_job.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from rows import rows_by  # tests/rows.py

from sparktf import TFGraphTransformer
from sparktf.errors import ModelSourceError, UnknownTensorError
from sparktf.inference import _outline


@pytest.fixture(scope="module")
def models(tf, mlp, tmp_path_factory):
    """Paths of: the MLP as a .keras file, a two-input Keras model, and a frozen graph whose
    output needs two placeholders (x [?, 4] and scale [])."""
    import keras

    folder = tmp_path_factory.mktemp("planning")
    mlp.save(str(folder / "mlp.keras"))
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    two = keras.Model([a, b], keras.layers.Add(name="sum")([a, b]))
    two.save(str(folder / "two.keras"))
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        scale = tf.compat.v1.placeholder(tf.float32, [], name="scale")
        tf.identity(x * scale, name="y")
        tf.identity(x + 1.0, name="z")
    (folder / "scaled.pb").write_bytes(graph.as_graph_def().SerializeToString())
    return {name: str(folder / f"{name}") for name in ("mlp.keras", "two.keras", "scaled.pb")}


@pytest.fixture(scope="module")
def frame(spark, features):
    rows = [(i, features[i].tolist()) for i in range(len(features))]
    return spark.createDataFrame(rows, "id long, f array<float>").repartition(3).cache()


@pytest.fixture()
def on_workers(monkeypatch):
    """Plan as a driver without TensorFlow does; nothing cached from other tests."""
    _outline._ANSWERS.clear()
    monkeypatch.setattr(_outline, "tensorflow_loaded", lambda: False)
    yield
    _outline._ANSWERS.clear()


def _scores(stage, frame):
    return np.array([r["scores"] for r in rows_by(stage.transform(frame), "id")])


@pytest.mark.parametrize("broadcast", [True, False])
def test_planned_on_the_workers_the_transform_scores_like_the_model(
    on_workers, frame, features, mlp, models, broadcast
):
    stage = TFGraphTransformer(
        modelPath=models["mlp.keras"], inputCol="f", outputCol="scores", broadcastModel=broadcast
    )
    np.testing.assert_allclose(_scores(stage, frame), mlp(features).numpy(), rtol=1e-5, atol=1e-6)


def test_a_graph_planned_on_the_workers_feeds_and_fetches_by_name(on_workers, frame, features):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        tf.identity(tf.reduce_sum(x, axis=1, keepdims=True) * 2.0, name="twice")
    stage = TFGraphTransformer.fromGraphDef(
        graph.as_graph_def(), inputMapping={"f": "x"}, outputMapping={"twice": "scores"}
    )
    rows = rows_by(stage.transform(frame), "id")
    assert [r["scores"] for r in rows] == pytest.approx((features.sum(axis=1) * 2).tolist())


_MISTAKES = {
    "unknown input": (
        "mlp.keras", {"inputMapping": {"f": "nope"}, "outputCol": "scores"}, UnknownTensorError
    ),
    "unknown output": (
        "mlp.keras", {"inputCol": "f", "outputMapping": {"nope": "s"}}, UnknownTensorError
    ),
    "two inputs by inputCol": ("two.keras", {"inputCol": "f", "outputCol": "s"}, ValueError),
    "no input column": ("mlp.keras", {"outputCol": "s"}, ValueError),
    "two outputs, no mapping": ("scaled.pb", {"inputMapping": {"f": "x:0"}}, ValueError),
    "a placeholder left unfed": (
        "scaled.pb", {"inputMapping": {"f": "x:0"}, "outputMapping": {"y:0": "s"}}, ValueError
    ),
}  # fmt: skip


@pytest.mark.parametrize("mistake", list(_MISTAKES))
def test_a_mistake_planned_on_the_workers_gets_the_drivers_error(
    monkeypatch, frame, models, mistake
):
    model, params, kind = _MISTAKES[mistake]
    stage = TFGraphTransformer(modelPath=models[model], **params)
    _outline._ANSWERS.clear()
    with pytest.raises(kind) as on_driver:
        stage.transform(frame)
    monkeypatch.setattr(_outline, "tensorflow_loaded", lambda: False)
    with pytest.raises(kind) as on_workers:
        stage.transform(frame)
    assert type(on_workers.value) is type(on_driver.value)
    assert str(on_workers.value) == str(on_driver.value)


def test_an_unreadable_model_planned_on_the_workers_names_its_source(on_workers, frame):
    stage = TFGraphTransformer.fromBytes(b"\x00" * 64, modelFormat="graphdef", inputCol="f")
    with pytest.raises(ModelSourceError, match="Cannot load the graphdef model from model bytes"):
        stage.transform(frame)


def test_an_error_type_the_driver_does_not_import_arrives_named():
    error = _outline._driver_error("tensorflow.python.framework.errors_impl", "NotFoundError", "x")
    assert isinstance(error, RuntimeError)
    assert str(error) == "tensorflow.python.framework.errors_impl.NotFoundError: x"
    assert type(_outline._driver_error("builtins", "TypeError", "bad")) is TypeError


def test_a_driver_that_never_imports_tensorflow(plan_run, tf, features):
    import keras

    result = plan_run
    assert result["tensorflowInDriver"] is False
    np.testing.assert_array_equal(np.array(result["features"], dtype=np.float32), features)
    expected = keras.models.load_model(result["model"])(features).numpy()
    for scores in result["scores"].values():
        np.testing.assert_allclose(np.array(scores), expected, rtol=1e-5, atol=1e-6)
    # The planning job loaded each model in the workers the transform's tasks then ran in.
    counts = [n for loads in result["loads"].values() for n in loads.values()]
    assert counts and max(counts) == 1, result["loads"]


def test_a_model_on_a_filesystem_that_is_not_local_is_read_through_spark(
    spark, monkeypatch, tmp_path
):
    from sparktf import _spark
    from sparktf._spark import _files

    data = bytes(range(256)) * 4099  # 1 MB, every byte value
    (tmp_path / "model.pb").write_bytes(data)
    (tmp_path / "_hidden.pb").write_bytes(data)
    monkeypatch.setattr(_files, "_local_path", lambda fs, path: None)  # as on HDFS or S3
    assert _spark.read_bytes(spark, str(tmp_path / "model.pb")) == data
    with pytest.raises(FileNotFoundError, match=r"names starting with '_' or '\.' are hidden"):
        _spark.read_bytes(spark, str(tmp_path / "_hidden.pb"))
