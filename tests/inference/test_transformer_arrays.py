"""TFGraphTransformer on array and vector columns: each model source (Keras file, frozen
GraphDef by path and from its bytes, SavedModel signature), column and output types, and
batches of one row, empty partitions and empty DataFrames."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import DenseVector, Vectors
from pyspark.sql import functions as F
from transformer_support import LABELS, SIDE, _by_id, _close

from sparktf import TFGraphTransformer

pytest_plugins = ("transformer_fixtures",)

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
