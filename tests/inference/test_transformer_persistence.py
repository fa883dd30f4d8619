"""TFGraphTransformer's model on its way to the workers and back to disk: identified by its
content, loaded once per worker, never served stale, read from its path by the workers; saved
with the stage or in a pipeline and loaded again; and the stage's contract (its Params, no
TensorFlow import on construction, a SavedModel folder found after a copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from transformer_support import LABELS, _by_id, _close

from sparktf import TFGraphTransformer

pytest_plugins = ("transformer_fixtures",)

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
