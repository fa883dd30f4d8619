"""What TFGraphTransformer refuses: unknown tensors, wrong columns, models and Params, before
any job runs; then rows that make a job fail, and non-finite scores.

A failed task ends its Python worker, and the next job starts a new one: so this module's name
sorts after the other modules of tests/inference, and in it the jobs that fail (then those with
non-finite scores, which fail too) run after the refusals on the driver."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F
from transformer_support import LABELS, _by_id

from sparktf import TFGraphTransformer
from sparktf.errors import ModelSourceError, UnknownTensorError

pytest_plugins = ("transformer_fixtures",)

# -- errors, before any output -----------------------------------------------------------------


def test_unknown_tensor_lists_graph_inputs_and_outputs(features_df, batched_graph):
    _, path, output = batched_graph
    stage = TFGraphTransformer(modelPath=path, inputMapping={"f": "images:0"})
    with pytest.raises(
        UnknownTensorError,
        match=r"The graphdef model has no input tensor 'images:0'\. Its inputs: 'x:0' "
        rf"\(float32, \[\?, 4\]\)\. Its outputs: '{output}' \(float32, \[\?, 4\]\)\.",
    ):
        stage.transform(features_df)


def test_unknown_signature_and_output_key_of_savedmodel(features_df, saved_model):
    _, path = saved_model
    stage = TFGraphTransformer(modelPath=path, signatureName="predict", inputCol="f")
    with pytest.raises(
        UnknownTensorError,
        match=r"The SavedModel has no signature 'predict'\. Its signatures: "
        r"\['arrays', 'serving_default'\]\.",
    ):
        stage.transform(features_df)
    stage = TFGraphTransformer(
        modelPath=path, signatureName="arrays", inputMapping={"f": "a", "g": "b"},
        outputMapping={"sum": "s"},
    )  # fmt: skip
    with pytest.raises(
        UnknownTensorError, match=r"no output tensor 'sum'\. Its inputs: 'a' \(float32, \[\?, 4\]\)"
    ):
        stage.transform(features_df.withColumn("g", F.col("f")))


def test_wrong_column_type(spark, keras_files):
    df = spark.createDataFrame([("a",)], ["f"])
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    with pytest.raises(
        TypeError,
        match=r"Column 'f' of TFGraphTransformer feeds tensor 'feat' \(float32, \[\?, 4\]\) and "
        r"must be numeric: .* Got string instead\.",
    ):
        stage.transform(df)


def test_static_shape_mismatch_is_caught_on_the_driver(features_df, keras_files):
    stage = TFGraphTransformer(
        modelPath=keras_files["cnn.keras"], inputCol="f", inputShapes={"f": [2, 2, 1]}
    )
    with pytest.raises(
        ValueError,
        match=r"reshapes rows of column 'f' to inputShapes \[2, 2, 1\], but tensor 'image' "
        r"\(float32, \[\?, 16, 16, 3\]\) expects rows of shape \[16, 16, 3\]",
    ):
        stage.transform(features_df)


def test_missing_model_path(features_df, folder):
    missing = str(folder / "nowhere.pb")
    for broadcast in (True, False):
        stage = TFGraphTransformer(modelPath=missing, inputCol="f", broadcastModel=broadcast)
        with pytest.raises(
            FileNotFoundError,
            match=rf"cannot read its model: no file or directory at modelPath '{missing}'",
        ):
            stage.transform(features_df)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("corrupt.pb", b"\x0a\xff\xff\xff garbage", "Cannot load the graphdef model from .*corrupt"
         r"\.pb: not a serialized GraphDef"),
        ("corrupt.keras", b"PK\x03\x04 not really a zip", "Cannot load the keras model from "
         r".*corrupt\.keras: not a loadable Keras file"),
    ],
)  # fmt: skip
def test_corrupt_model_file(features_df, folder, name, content, message):
    path = folder / name
    path.write_bytes(content)
    with pytest.raises(ModelSourceError, match=message):
        TFGraphTransformer(modelPath=str(path), inputCol="f").transform(features_df)


def test_mapping_and_output_errors(features_df, saved_model, keras_files, seed_graph):
    _, path = saved_model
    with pytest.raises(ValueError, match=r"The model has 2 inputs, so TFGraphTransformer needs "):
        TFGraphTransformer(modelPath=path, inputCol="f").transform(features_df)
    stage = TFGraphTransformer(
        modelPath=path, signatureName="arrays", inputMapping={"f": "a"}, outputMapping={"diff": "d"}
    )
    with pytest.raises(ValueError, match=r"no column is mapped to \['b'\]"):
        stage.transform(features_df)
    with pytest.raises(ValueError, match=r"would overwrite existing column\(s\) \['id'\]"):
        TFGraphTransformer(
            modelPath=keras_files["mlp.keras"], inputCol="f", outputCol="id"
        ).transform(features_df)
    _, pb, _ = seed_graph
    with pytest.raises(
        ValueError, match=r"has 3 labels, but column 'scores' \(tensor 'softmax:0'\) holds 4"
    ):
        TFGraphTransformer(
            modelPath=pb, inputMapping={"c": "DecodeJpeg/contents"}, labels=LABELS[:3],
            outputMapping={"softmax:0": "scores"},
        ).transform(features_df.withColumn("c", F.lit(bytearray(b"x"))))  # fmt: skip


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"batchSize": 0}, ValueError, r"The 'batchSize' param of TFGraphTransformer must be an "
         r"int in \[1, inf\)\. Got 0 instead\."),
        ({"topK": 0}, ValueError, r"The 'topK' param of TFGraphTransformer must be an int in "
         r"\[1, inf\)\. Got 0 instead\."),
        ({"handleInvalid": "ignore"}, ValueError, r"The 'handleInvalid' param of "
         r"TFGraphTransformer must be one of 'error', 'skip', 'keep'\. Got 'ignore' instead\."),
        ({"imageSize": [224]}, ValueError, r"The 'imageSize' param of TFGraphTransformer must "
         r"be empty or \[height, width\] with ints >= 1\. Got \[224\] instead\."),
        ({"outputTypes": {"p": "matrix"}}, ValueError, r"The 'outputTypes' param"),
        ({"modelFormat": "onnx"}, ValueError, r"The 'modelFormat' param of TFGraphTransformer "
         r"must be one of 'auto', 'graphdef', 'savedmodel', 'keras'\. Got 'onnx' instead\."),
        ({"modelPath": ""}, ValueError, r"TFGraphTransformer has no model: set modelPath"),
    ],
)  # fmt: skip
def test_param_errors_before_any_job(features_df, keras_files, params, error, message):
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    stage._set(**params)
    with pytest.raises(error, match=message):
        stage.transform(features_df)


def test_mapping_params_reject_non_string_values():
    with pytest.raises(TypeError, match=r"Could not convert \{'f': 3\} to a dict of str -> str"):
        TFGraphTransformer(inputMapping={"f": 3})


# -- jobs that fail (last: a failed task ends its Python worker, later jobs start new ones)


def test_invalid_image_error_names_the_path(mixed_images, keras_files):
    stage = TFGraphTransformer(modelPath=keras_files["cnn.keras"], inputCol="content")
    with pytest.raises(
        Exception,
        match=r"TFGraphTransformer cannot use the input \('content'\) of the row with path "
        r"'broken.jpg': cannot decode image: .* Set handleInvalid='skip'",
    ):
        stage.transform(mixed_images.filter("path != 'null'")).collect()


def test_shape_mismatch_fails_the_job_before_any_output(spark, keras_files, tmp_path):
    df = spark.createDataFrame([([1.0, 2.0, 3.0, 4.0, 5.0],)], "f array<double>")
    stage = TFGraphTransformer(modelPath=keras_files["mlp.keras"], inputCol="f")
    target = str(tmp_path / "out")
    with pytest.raises(
        Exception,
        match=r"shape mismatch for column 'f' feeding tensor 'feat': expected rows of shape "
        r"\[4\] \(4 values\), got a row of 5 values",
    ):
        stage.transform(df).write.parquet(target)
    assert not os.path.exists(os.path.join(target, "_SUCCESS"))


def test_graph_that_decodes_images_itself_names_the_rejected_row(mixed_images, seed_graph):
    _, path, _ = seed_graph
    stage = TFGraphTransformer(
        modelPath=path,
        inputMapping={"content": "DecodeJpeg/contents:0"},
        outputMapping={"softmax:0": "scores"},
    )
    with pytest.raises(
        Exception,
        match=r"cannot use the input \('content'\) of the row with path 'broken.jpg': the model "
        r"rejected it: ",
    ):
        stage.transform(mixed_images.filter("path != 'null'")).collect()


# -- non-finite scores -------------------------------------------------------------------------


def _overflowing(softmax: bool):
    """A network whose first score overflows to +inf for rows summing to more than ~1.1."""
    import keras

    dense = keras.layers.Dense(3, activation="softmax" if softmax else None, name="scores")
    model = keras.Sequential([keras.Input((4,), name="f"), dense])
    kernel = np.zeros((4, 3), np.float32)
    kernel[:, 0] = 3e38
    dense.set_weights([kernel, np.array([0.0, 0.5, 0.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def overflow_df(spark):
    rows = [(0, [1.0, 1.0, 1.0, 1.0]), (1, [0.0, 0.0, 0.0, 0.0]), (2, [2.0, 0.0, 0.0, 1.0])]
    return spark.createDataFrame(rows, "id long, f array<float>")


def test_classification_model_with_infinite_logits_gives_probability_one(overflow_df, tf):
    from sparktf._loading import keras_to_bytes
    from sparktf.classification import TFClassificationModel

    model = TFClassificationModel._create(
        model_bytes=keras_to_bytes(_overflowing(softmax=False)),
        num_features=4, num_classes=3, outputs_logits=True, history={},
    )  # fmt: skip
    rows = _by_id(model.setFeaturesCol("f").transform(overflow_df))
    assert [r["prediction"] for r in rows] == [0.0, 1.0, 0.0]
    assert rows[0]["probability"].toArray().tolist() == [1.0, 0.0, 0.0]
    raw = rows[0]["rawPrediction"].toArray()  # centred log-probabilities, 0 counted as 1e-300
    np.testing.assert_allclose(raw, [460.517019, -230.258509, -230.258509], rtol=1e-6)
    assert rows[1]["probability"].toArray().sum() == pytest.approx(1.0)
    assert model.predictProbability(Vectors.dense([1.0] * 4)).toArray().tolist() == [1, 0, 0]
    nan_row = overflow_df.sparkSession.createDataFrame(
        [(3, [float("nan"), 0.0, 0.0, 0.0])], "id long, f array<float>"
    )
    with pytest.raises(Exception, match=r"non-finite scores .* for 1 of 4 rows in a batch"):
        model.transform(overflow_df.union(nan_row).coalesce(1)).collect()


def test_transformer_vector_output_with_nan_fails_clearly(overflow_df, tf):
    stage = TFGraphTransformer.fromKeras(
        _overflowing(softmax=True), inputCol="f", outputCol="p", outputTypes={"p": "vector"}
    )  # a softmax over +inf gives NaN
    with pytest.raises(Exception, match=r"gave NaN for 2 of 3 rows .* cannot hold NaN"):
        stage.transform(overflow_df.coalesce(1)).collect()
    as_array = stage.copy().setOutputTypes({"p": "array"})
    rows = _by_id(as_array.transform(overflow_df))
    assert np.isnan(rows[0]["p"][0]) and not np.isnan(rows[1]["p"][0])  # an array keeps NaN
