"""TFClassificationModel's output: the MLlib classifier contract (columns, types, probabilities
that sum to one), single-row predictions, MLlib's evaluators, thresholds, a frozen network, and
transforms that keep their input or get none; the default Params' accuracy on the digits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pyspark.ml.evaluation import (
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator,
)
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T
from rows import rows_by  # tests/rows.py
from tfclassifier_support import SMALL, _probabilities

from sparktf import TFClassificationModel, TFClassifier

pytest_plugins = ("tfclassifier_fixtures",)


@pytest.fixture(scope="module")
def default_model(digits):
    train, _ = digits
    return TFClassifier().fit(train)


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


def test_transform_keeps_inputs_and_refuses_to_overwrite(small_model, digits):
    _, test = digits
    clash = test.withColumn("prediction", F.lit(1.0))
    with pytest.raises(ValueError, match=r"would overwrite existing column\(s\) \['prediction'\]"):
        small_model.transform(clash)


def test_transform_on_empty_dataframe(small_model, digits):
    _, test = digits
    assert small_model.transform(test.limit(0)).count() == 0
