"""TFClassifier / TFClassificationModel: training in tasks, MLlib output contract, persistence."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
)
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T
from rows import rows_by  # tests/rows.py

from sparktf import TFClassificationModel, TFClassifier
from sparktf.classification import TrainingError

SMALL = {"hiddenLayers": [32], "epochs": 4, "batchSize": 64, "learningRate": 0.01}


def _probabilities(df, col="probability"):
    rows = rows_by(df.select("image_id", col), "image_id")
    return np.array([r[1].toArray() for r in rows])


@pytest.fixture(scope="module")
def default_model(digits):
    train, _ = digits
    return TFClassifier().fit(train)


@pytest.fixture(scope="module")
def small_model(digits):
    train, _ = digits
    return TFClassifier(**SMALL).fit(train)


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, sparktf\n"
        "from sparktf import TFClassifier, TFClassificationModel\n"
        "TFClassifier(hiddenLayers=[4])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_params_reach_096_accuracy_on_digits(default_model, digits):
    _, test = digits
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        default_model.transform(test)
    )
    assert accuracy >= 0.96, accuracy


def test_output_follows_mllib_classifier_contract(small_model, digits):
    _, test = digits
    out = small_model.transform(test)
    assert out.columns == [*test.columns, "rawPrediction", "probability", "prediction"]
    assert isinstance(out.schema["rawPrediction"].dataType, VectorUDT)
    assert isinstance(out.schema["probability"].dataType, VectorUDT)
    assert out.schema["prediction"].dataType == T.DoubleType()
    rows = out.select("probability", "prediction", "rawPrediction").collect()
    assert len(rows) == test.count()
    prob = np.array([r.probability.toArray() for r in rows])
    assert prob.shape[1] == 10 == small_model.numClasses
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(prob.argmax(axis=1), [r.prediction for r in rows])
    raw = np.array([r.rawPrediction.toArray() for r in rows])
    np.testing.assert_array_equal(raw.argmax(axis=1), prob.argmax(axis=1))
    assert small_model.numFeatures == 64


def test_single_row_predict_matches_transform(small_model, digits):
    _, test = digits
    row = test.orderBy("image_id").first()
    out = small_model.transform(test.where(F.col("image_id") == row.image_id)).first()
    np.testing.assert_allclose(
        small_model.predictProbability(row.features).toArray(), out.probability.toArray(), 1e-5
    )
    assert small_model.predict(row.features) == out.prediction
    np.testing.assert_allclose(
        small_model.predictRaw(row.features).toArray(), out.rawPrediction.toArray(), 1e-4
    )
    with pytest.raises(ValueError, match=r"expects feature vectors of length 64. Got length 3"):
        small_model.predict(Vectors.dense([1.0, 2.0, 3.0]))


def test_evaluators_work_unchanged(small_model, digits):
    _, test = digits
    out = small_model.transform(test)
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out)
    f1 = MulticlassClassificationEvaluator(metricName="f1").evaluate(out)
    log_loss = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(out)
    assert 0.85 < accuracy <= 1.0
    assert 0.85 < f1 <= 1.0
    # The evaluators read the network's own probabilities: scikit-learn's log loss and accuracy
    # of the softmax of the Keras model's logits, computed here on the driver.
    from sklearn import metrics

    rows = out.select("features", "label").collect()
    labels = np.array([r.label for r in rows])
    logits = np.asarray(
        small_model.keras_model()(np.array([r.features.toArray() for r in rows], np.float32)),
        np.float64,
    )
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    assert log_loss == pytest.approx(metrics.log_loss(labels, prob, labels=range(10)), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(prob.argmax(axis=1) == labels), abs=1e-12)


def test_binary_classification_evaluator(digits):
    train, test = digits

    def binary(df):
        return df.where(F.col("label") <= 1)

    model = TFClassifier(**SMALL).fit(binary(train))
    assert model.numClasses == 2
    auc = BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(
        model.transform(binary(test))
    )
    assert auc > 0.98


def test_thresholds_change_predictions(small_model, digits):
    _, test = digits
    # MLlib semantics: predict argmax(probability / thresholds).
    thresholds = [1.0] * 10
    thresholds[3] = 1e-4
    plain = small_model.transform(test)
    skewed = small_model.copy({small_model.thresholds: thresholds}).transform(test)
    prob = _probabilities(plain)
    expected = (prob / np.array(thresholds)).argmax(axis=1)
    got = [r[1] for r in rows_by(skewed.select("image_id", "prediction"), "image_id")]
    np.testing.assert_array_equal(got, expected)
    before = [r.prediction for r in plain.select("prediction").collect()]
    assert sum(g == 3.0 for g in got) > sum(b == 3.0 for b in before)
    with pytest.raises(ValueError, match=r"must have one value per class \(10\). Got 2"):
        small_model.copy({small_model.thresholds: [0.5, 0.5]}).transform(test)


def test_a_frozen_network_scores_as_the_trained_one(small_model, digits, tmp_path):
    _, test = digits
    frozen = small_model.copy({small_model.freezeModel: True})
    assert not small_model.getFreezeModel() and frozen.getFreezeModel()
    np.testing.assert_allclose(
        _probabilities(frozen.transform(test)),
        _probabilities(small_model.transform(test)),
        rtol=1e-5,
        atol=1e-6,
    )
    frozen.write().overwrite().save(str(tmp_path / "frozen"))
    assert TFClassificationModel.load(str(tmp_path / "frozen")).getFreezeModel()
    assert TFClassifier(freezeModel=True).getFreezeModel()


def test_seed_gives_identical_predictions_on_rerun(digits):
    train, test = digits
    params = {**SMALL, "epochs": 2, "seed": 123}
    first = _probabilities(TFClassifier(**params).fit(train).transform(test))
    second = _probabilities(TFClassifier(**params).fit(train).transform(test))
    np.testing.assert_array_equal(first, second)
    other = _probabilities(TFClassifier(**{**params, "seed": 124}).fit(train).transform(test))
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TFClassifier(seed=None),
        lambda: TFClassifier(seed=5).setParams(seed=None),
        lambda: TFClassifier(seed=5).setSeed(None),
    ],
)
def test_seed_none_is_refused_not_ignored(make):
    with pytest.raises(TypeError, match=r"'seed' param of TFClassifier must be an int\. Got seed="):
        make()


def test_other_none_keywords_still_leave_params_alone():
    clf = TFClassifier(seed=5, hiddenLayers=[8]).setParams(hiddenLayers=None, epochs=2)
    assert (clf.getSeed(), clf.getHiddenLayers(), clf.getEpochs()) == (5, [8], 2)


def test_history_reports_epochs_time_and_worker(small_model):
    history = small_model.history
    assert len(history["epochs"]["loss"]) == SMALL["epochs"]
    assert len(history["epochs"]["accuracy"]) == SMALL["epochs"]
    assert history["epochs"]["loss"][-1] < history["epochs"]["loss"][0]
    assert history["seconds"] > 0
    assert history["worker"]["pid"] != os.getpid()  # trained in a Python worker, not the driver
    assert history["worker"]["threads"] == 1  # spark.task.cpus
    assert small_model.trainingFailure is None


def test_validation_indicator_and_early_stopping(digits):
    train, _ = digits
    marked = train.withColumn("is_val", (F.col("image_id") % 5) == 0)
    model = TFClassifier(
        hiddenLayers=[64],
        epochs=300,
        batchSize=256,
        learningRate=0.01,
        validationIndicatorCol="is_val",
        earlyStoppingPatience=2,
    ).fit(marked)
    epochs = model.history["epochs"]
    assert "val_loss" in epochs and "val_accuracy" in epochs
    assert len(epochs["loss"]) < 300  # early stopping ended training
    assert max(epochs["val_accuracy"]) > 0.9
    # ... and kept the best epoch's weights: the model's loss on the validation rows is the best
    # epoch's recorded val_loss, not the last epoch's.
    best, last = min(epochs["val_loss"]), epochs["val_loss"][-1]
    assert last > best * (1 + 1e-3)
    held_out = model.transform(marked.where("is_val"))
    val_loss = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(held_out)
    assert val_loss == pytest.approx(best, rel=1e-4)


def test_validation_split_reports_validation_metrics(digits):
    train, _ = digits
    model = TFClassifier(**SMALL, validationSplit=0.25).fit(train)
    assert len(model.history["epochs"]["val_loss"]) == SMALL["epochs"]


def test_array_and_sparse_feature_columns(spark, digits):
    train, test = digits
    arrays = train.withColumn("features", vector_to_array("features", "float32"))
    model = TFClassifier(**SMALL).fit(arrays)
    out = model.transform(test.withColumn("features", vector_to_array("features")))
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out)
    assert acc > 0.85

    sparse = spark.createDataFrame(
        [
            (Vectors.sparse(4, [0], [1.0]), 0.0),
            (Vectors.sparse(4, [1], [1.0]), 1.0),
            (Vectors.dense([0.9, 0.0, 0.1, 0.0]), 0.0),
            (Vectors.dense([0.0, 1.0, 0.0, 0.2]), 1.0),
        ]
        * 10,
        ["features", "label"],
    )
    model = TFClassifier(hiddenLayers=[8], epochs=30, learningRate=0.05).fit(sparse)
    predictions = [r.prediction for r in model.transform(sparse).collect()]
    assert predictions == [0.0, 1.0, 0.0, 1.0] * 10


def test_convolutional_network_with_input_shape(digits):
    train, test = digits
    model = TFClassifier(
        convLayers=[8], inputShape=[8, 8], hiddenLayers=[32], epochs=4, learningRate=0.01
    ).fit(train)
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(model.transform(test))
    assert acc > 0.85
    assert "conv0" in [layer.name for layer in model.keras_model().layers]


def _user_model(units: int, softmax: bool):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(units, activation="tanh"),
            keras.layers.Dense(10, activation="softmax" if softmax else None),
        ]
    )


def test_user_keras_architecture_trains_saves_and_loads(digits, tmp_path):
    train, test = digits
    clf = TFClassifier(epochs=4, learningRate=0.01, kerasModel=_user_model(24, softmax=True))
    model = clf.fit(train)
    out = model.transform(test)
    acc = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out)
    assert acc > 0.85
    np.testing.assert_allclose(_probabilities(out).sum(axis=1), 1.0, atol=1e-5)
    layer_sizes = [w.shape for w in model.keras_model().get_weights()]
    assert (64, 24) in layer_sizes  # the user's architecture, not the built-in one

    clf.save(str(tmp_path / "est"))
    loaded = TFClassifier.load(str(tmp_path / "est"))
    assert loaded.getKerasModel() == clf.getKerasModel()
    model.save(str(tmp_path / "model"))
    again = TFClassificationModel.load(str(tmp_path / "model"))
    np.testing.assert_array_equal(_probabilities(out), _probabilities(again.transform(test)))


def test_user_architectures_in_a_grid(digits):
    from pyspark.ml.tuning import ParamGridBuilder

    train, _ = digits
    clf = TFClassifier(epochs=2, learningRate=0.01)
    grid = (
        ParamGridBuilder()
        .addGrid(
            clf.kerasModel,
            [_user_model(8, softmax=False).to_json(), _user_model(16, softmax=True).to_json()],
        )
        .build()
    )
    models = dict(clf.fitMultiple(train, grid))
    sizes = [
        sorted(w.shape for w in models[i].keras_model().get_weights() if len(w.shape) == 2)
        for i in range(2)
    ]
    assert (64, 8) in sizes[0] and (64, 16) in sizes[1]


def test_user_architecture_with_wrong_output_size_fails_clearly(digits):
    import keras

    train, _ = digits
    bad = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(3)])
    with pytest.raises(TrainingError, match=r"must output 10 scores"):
        TFClassifier(epochs=1, kerasModel=bad).fit(train)


def test_keras_model_param_rejects_non_models():
    with pytest.raises(TypeError, match=r"must be a Keras model or its JSON architecture"):
        TFClassifier(kerasModel=42)
    with pytest.raises(TypeError, match=r"a string that is not JSON"):
        TFClassifier(kerasModel="not json")


def test_a_keras_model_with_trained_weights_is_refused_not_retrained(tmp_path):
    import keras

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert TFClassifier(kerasModel=model).getKerasModel() == model.to_json()  # compiled only
    model.fit(np.ones((8, 4)), np.zeros((8, 2)), epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "trained.keras")
    model.save(path)
    message = (
        r"optimizer has taken 2 steps, so its trained weights would be lost\. Pass .*"
        r"model\.save\('base\.keras'\) and pass baseModel='base\.keras'"
    )
    for trained in (model, keras.models.load_model(path)):
        with pytest.raises(ValueError, match=message):
            TFClassifier(kerasModel=trained)
        with pytest.raises(ValueError, match=message):
            TFClassifier().setKerasModel(trained)
        assert TFClassifier(kerasModel=trained.to_json()).getKerasModel() == model.to_json()


def test_model_save_load_gives_identical_predictions(small_model, digits, tmp_path):
    _, test = digits
    path = str(tmp_path / "model")
    small_model.write().overwrite().save(path)
    assert os.path.isfile(os.path.join(path, "model.keras"))
    loaded = TFClassificationModel.load(path)
    assert loaded.uid == small_model.uid
    assert loaded.getHiddenLayers() == SMALL["hiddenLayers"]
    assert loaded.numClasses == 10 and loaded.numFeatures == 64
    assert loaded.history["epochs"] == small_model.history["epochs"]
    np.testing.assert_array_equal(
        _probabilities(small_model.transform(test)), _probabilities(loaded.transform(test))
    )
    # The weights file is a plain Keras file users can open on their own.
    import keras

    net = keras.saving.load_model(os.path.join(path, "model.keras"), compile=False)
    assert net.output_shape == (None, 10)


def test_estimator_save_load_keeps_params(spark, tmp_path):
    clf = TFClassifier(hiddenLayers=[7, 5], optimizer="sgd", learningRate=0.3, epochs=9, seed=5)
    clf.save(str(tmp_path / "clf"))
    loaded = TFClassifier.load(str(tmp_path / "clf"))
    assert loaded.uid == clf.uid
    for name in ("hiddenLayers", "optimizer", "learningRate", "epochs", "seed", "batchSize"):
        assert loaded.getOrDefault(name) == clf.getOrDefault(name), name


def test_pipeline_fit_save_load_predict_round_trip(spark, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + 2 * x[:, 1] - x[:, 2] > 0).astype(float)
    df = spark.createDataFrame(
        [
            (int(i), *map(float, row), float(label))
            for i, (row, label) in enumerate(zip(x, y, strict=True))
        ],
        ["image_id", "a", "b", "c", "label"],
    )
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=["a", "b", "c"], outputCol="features"),
            TFClassifier(hiddenLayers=[16], epochs=15, learningRate=0.02),
        ]
    )
    fitted = pipeline.fit(df)
    before = _probabilities(fitted.transform(df))
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        fitted.transform(df)
    )
    assert accuracy > 0.9
    pipeline.save(str(tmp_path / "pipeline"))
    assert len(Pipeline.load(str(tmp_path / "pipeline")).getStages()) == 2
    fitted.save(str(tmp_path / "fitted"))
    loaded = PipelineModel.load(str(tmp_path / "fitted"))
    assert isinstance(loaded.stages[-1], TFClassificationModel)
    np.testing.assert_array_equal(before, _probabilities(loaded.transform(df)))


def test_transform_keeps_inputs_and_refuses_to_overwrite(small_model, digits):
    _, test = digits
    clash = test.withColumn("prediction", F.lit(1.0))
    with pytest.raises(ValueError, match=r"would overwrite existing column\(s\) \['prediction'\]"):
        small_model.transform(clash)


def test_transform_on_empty_dataframe(small_model, digits):
    _, test = digits
    assert small_model.transform(test.limit(0)).count() == 0


def test_model_cache_loads_once_per_worker(cache_run):
    # On local[1] one reused Python worker runs every task, so each probe sees the process that
    # ran the transform before it: the first transform loaded the model there, the second was
    # served from its cache (no load at all).
    first, second = cache_run["probes"]
    ((pid, cached, loads),) = first
    assert cached and loads >= 1, first
    assert second == [[pid, True, loads]], (first, second)


def test_model_cache_is_a_bounded_lru():
    from sparktf._loading import ModelCache

    cache = ModelCache(capacity=2)
    calls = []
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get(key, lambda key=key: calls.append(key) or key.upper())
    assert calls == ["a", "b", "c", "b"]  # "b" was evicted by "c", "a" stayed (recently used)
    assert "a" in cache and "b" in cache and "c" not in cache


# -- bad input: clear errors before training ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny(spark):
    return spark.createDataFrame(
        [(Vectors.dense([0.0, 1.0]), 0.0), (Vectors.dense([1.0, 0.0]), 1.0)] * 4,
        ["features", "label"],
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"batchSize": 0},
            r"The 'batchSize' param of TFClassifier must be an int in \[1, inf\)\. "
            r"Got 0 instead\.",
        ),
        (
            {"epochs": -1},
            r"The 'epochs' param of TFClassifier must be an int in \[1, inf\)\. "
            r"Got -1 instead\.",
        ),
        (
            {"learningRate": 0.0},
            r"The 'learningRate' param of TFClassifier must be a float in "
            r"\(0, inf\)\. Got 0\.0 instead\.",
        ),
        ({"learningRate": -0.1}, r"'learningRate' param .* Got -0\.1 instead"),
        (
            {"optimizer": "adamm"},
            r"The 'optimizer' param of TFClassifier must be one of 'adam', "
            r".*'rmsprop'.*\. Got 'adamm' instead\.",
        ),
        ({"dropout": 1.0}, r"The 'dropout' param of TFClassifier must be a float in \[0, 1\)"),
        (
            {"hiddenLayers": [0]},
            r"The 'hiddenLayers' param of TFClassifier must be a list of "
            r"ints >= 1\. Got \[0\] instead\.",
        ),
        ({"convLayers": [4]}, r"'convLayers' param of TFClassifier needs 'inputShape'"),
        ({"classCount": 1}, r"'classCount' param of TFClassifier must be 0 \(infer\) or an int"),
    ],
)
def test_bad_params_raise_before_any_spark_job(spark, tiny, params, message):
    sc = spark.sparkContext
    sc.setJobGroup("bad-params", "bad params")
    try:
        with pytest.raises(ValueError, match=message):
            TFClassifier(**params).fit(tiny)
        assert sc.statusTracker().getJobIdsForGroup("bad-params") == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def _df(spark, rows, schema):
    return spark.createDataFrame(rows, schema)


def test_missing_columns(tiny):
    with pytest.raises(ValueError, match=r"expects a features column 'pixels' \(featuresCol\)"):
        TFClassifier(featuresCol="pixels").fit(tiny)
    with pytest.raises(ValueError, match=r"expects a label column 'y' \(labelCol\)"):
        TFClassifier(labelCol="y").fit(tiny)


def test_wrong_column_types(spark):
    df = _df(spark, [("a", 0.0), ("b", 1.0)], "features string, label double")
    with pytest.raises(
        TypeError, match=r"must be an ml Vector or an array of numbers .* Got string"
    ):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0], "x"), ([0.0], "y")], "features array<double>, label string")
    with pytest.raises(TypeError, match=r"'label' \(labelCol\) .* must be numeric .* Got string"):
        TFClassifier().fit(df)


def test_transform_names_a_row_it_cannot_score(spark, small_model):
    """The transform runs the transformer's engine, whose messages name stage and column."""
    full = [float(i % 16) for i in range(64)]
    nulls = _df(spark, [(full,), (None,)], "features array<double>")
    with pytest.raises(
        Exception,
        match=r"TFClassificationModel cannot use the input \('features'\) of row \d+ .*null.*Drop",
    ):
        small_model.transform(nulls).collect()
    short = _df(spark, [(full,), ([1.0, 2.0, 3.0],)], "features array<double>")
    with pytest.raises(
        Exception,
        match=r"TFClassificationModel: shape mismatch for column 'features'.*\[64\].*3 values",
    ):
        small_model.transform(short).collect()
    # Integer arrays are cast on the JVM and score like the same values as doubles.
    ints = _df(spark, [([i % 16 for i in range(64)],)], "features array<int>")
    doubles = _df(spark, [(full,)], "features array<double>")
    np.testing.assert_allclose(
        small_model.transform(ints).first().probability.toArray(),
        small_model.transform(doubles).first().probability.toArray(),
    )


def test_null_features_and_labels(spark):
    df = _df(spark, [([1.0, 2.0], 0.0), (None, 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must not contain nulls. Got 1 null row\(s\) of 2"):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0, None], 0.0), ([0.0, 1.0], 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must hold finite numbers. Got 1 row\(s\)"):
        TFClassifier().fit(df)
    df = _df(spark, [([1.0, 2.0], 0.0), ([0.0, 1.0], None)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"'label' \(labelCol\) .* must not contain nulls"):
        TFClassifier().fit(df)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0.0, 1.5], r"must hold integer class indices 0\.\.K-1\. Got 1\.5"),
        ([0.0, -1.0], r"must hold integer class indices 0\.\.K-1\. Got -1\.0"),
        ([1.0, 1.0], r"must hold at least 2 classes .* Got a single class: 1"),
    ],
)
def test_bad_labels(spark, labels, message):
    df = _df(
        spark,
        [([1.0, 2.0], labels[0]), ([0.0, 1.0], labels[1])],
        "features array<double>, label double",
    )
    with pytest.raises(ValueError, match=message):
        TFClassifier().fit(df)


def test_label_outside_class_count(tiny):
    with pytest.raises(ValueError, match=r"labels in \[0, 3\) because classCount=3. Got label 4"):
        TFClassifier(classCount=3).fit(tiny.withColumn("label", F.col("label") * 4))


def test_feature_vectors_of_different_lengths(spark):
    df = _df(spark, [([1.0, 2.0], 0.0), ([0.0], 1.0)], "features array<double>, label double")
    with pytest.raises(ValueError, match=r"must hold vectors of one length. Got lengths \[1, 2\]"):
        TFClassifier().fit(df)


def test_input_shape_must_match_feature_size(tiny):
    with pytest.raises(
        ValueError,
        match=r"'inputShape' param of TFClassifier must have as many elements as each feature "
        r"vector \(2\)\. Got inputShape=\[3, 3\] \(9 elements\)",
    ):
        TFClassifier(inputShape=[3, 3]).fit(tiny)


def test_empty_dataframe(tiny):
    with pytest.raises(ValueError, match=r"cannot be fitted on an empty DataFrame"):
        TFClassifier().fit(tiny.limit(0))


def _bump_format(path, version):
    """Rewrite a saved stage's metadata as if a newer sparktf had written it."""
    import glob
    import json

    (part,) = glob.glob(os.path.join(path, "metadata", "part-*"))
    with open(part) as handle:
        metadata = json.loads(handle.read())
    metadata["sparktfFormat"] = version
    with open(part, "w") as handle:
        handle.write(json.dumps(metadata))
    _drop_checksum(part)


def _drop_checksum(path):
    """Remove the checksum Hadoop's local file system keeps beside a file we rewrote."""
    folder, name = os.path.split(path)
    crc = os.path.join(folder, f".{name}.crc")
    if os.path.exists(crc):
        os.remove(crc)


def test_a_folder_saved_by_a_newer_sparktf_is_refused(small_model, tmp_path):
    from sparktf import TFGraphTransformer

    model_path = str(tmp_path / "model")
    small_model.save(model_path)
    _bump_format(model_path, 2)
    with pytest.raises(ValueError, match=r"saved by a newer sparktf \(layout version 2\)"):
        TFClassificationModel.load(model_path)
    stage_path = str(tmp_path / "stage")
    TFGraphTransformer(modelPath="/models/m.pb", inputCol="x", outputCol="y").save(stage_path)
    _bump_format(stage_path, 7)
    with pytest.raises(ValueError, match=r"saved by a newer sparktf \(layout version 7\)"):
        TFGraphTransformer.load(stage_path)


def test_a_corrupt_saved_network_is_refused_when_loading(small_model, tmp_path):
    path = str(tmp_path / "model")
    small_model.save(path)
    keras_file = os.path.join(path, "model.keras")
    with open(keras_file, "rb") as handle:
        data = handle.read()
    with open(keras_file, "wb") as handle:
        handle.write(data[: len(data) // 2])  # a partial copy
    _drop_checksum(keras_file)
    with pytest.raises(ValueError, match=r"model.keras is not a readable Keras model file"):
        TFClassificationModel.load(path)
