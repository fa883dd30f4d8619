"""The contract every sparktf stage keeps, in the spirit of scikit-learn's check_estimator.

For each stage: every Param is documented, typed and has a getter (and a setter on stages users
configure); ``copy`` keeps Param values and applies extras; ``save``/``load`` round-trips the
Params alone and inside a ``PipelineModel``.
"""

from __future__ import annotations

import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.param import Params

from sparktf import TFClassificationModel, TFClassifier, TFGraphTransformer


def _keras_model():
    import keras

    return keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(2, activation="softmax")])


@pytest.fixture(scope="module")
def stages(spark):
    from pyspark.ml.linalg import Vectors

    df = spark.createDataFrame(
        [(Vectors.dense([0.0, 1.0]), 0.0), (Vectors.dense([1.0, 0.0]), 1.0)] * 4,
        ["features", "label"],
    )
    classifier = TFClassifier(hiddenLayers=[3], epochs=1, batchSize=4, seed=9)
    return {
        "df": df,
        "TFClassifier": classifier,
        "TFClassificationModel": classifier.fit(df),
        "TFGraphTransformer": TFGraphTransformer.fromKeras(
            _keras_model(), inputCol="features", outputCol="scores", batchSize=7
        ),
    }


STAGES = ["TFClassifier", "TFClassificationModel", "TFGraphTransformer"]
CONFIGURED = {"TFClassifier", "TFGraphTransformer"}  # stages users build and set Params on
#: A fitted model's Params that act at transform time (MLlib's models have setters for theirs);
#: its training Params are records of the fit, without setters, as on MLlib's models.
AT_TRANSFORM = {
    "TFClassificationModel": {
        "featuresCol",
        "predictionCol",
        "probabilityCol",
        "rawPredictionCol",
        "thresholds",
        "predictBatchSize",
        "freezeModel",
    }
}


def _setter(name: str) -> str:
    return "set" + name[0].upper() + name[1:]


@pytest.mark.parametrize("name", STAGES)
def test_params_are_documented_typed_and_have_accessors(stages, name):
    stage: Params = stages[name]
    assert stage.params, name
    for param in stage.params:
        assert len(param.doc) > 10, (name, param.name)
        assert param.typeConverter is not None, (name, param.name)
        getter = "get" + param.name[0].upper() + param.name[1:]
        assert callable(getattr(stage, getter, None)), (name, getter)
        if name in CONFIGURED or param.name in AT_TRANSFORM.get(name, ()):
            assert callable(getattr(stage, _setter(param.name), None)), (name, param.name)


def test_a_model_has_a_setter_for_each_param_acting_at_transform_and_for_no_other(stages):
    from sparktf.param.declare import _declarations

    model = stages["TFClassificationModel"]
    declared = _declarations(type(model))
    wanted = AT_TRANSFORM["TFClassificationModel"]
    assert {name for name, item in declared.items() if item.at_transform} == wanted
    assert {p.name for p in model.params if callable(getattr(model, _setter(p.name), None))} == (
        wanted
    )
    copy = model.copy()
    for name, value in [("predictBatchSize", 7), ("freezeModel", True), ("thresholds", [1, 2])]:
        assert getattr(copy, _setter(name))(value) is copy
        assert copy.getOrDefault(name) == value
    with pytest.raises(ValueError, match=r"'predictBatchSize' param of TFClassificationModel"):
        copy.setPredictBatchSize(0).transform(stages["df"])


@pytest.mark.parametrize("name", STAGES)
def test_copy_keeps_values_and_applies_extras(stages, name):
    stage: Params = stages[name]
    param = stage.getParam("batchSize")
    copied = stage.copy({param: 11})
    assert copied.uid == stage.uid
    assert copied.getOrDefault(param.name) == 11
    assert stage.getOrDefault(param.name) != 11  # the original is untouched
    for other in stage.params:
        if other.name != "batchSize" and stage.isDefined(other):
            assert copied.getOrDefault(other.name) == stage.getOrDefault(other), other.name


def _explicit(stage: Params) -> dict:
    return {p.name: v for p, v in stage.extractParamMap().items()}


@pytest.mark.parametrize("name", STAGES)
def test_save_load_round_trip_alone_and_in_a_pipeline_model(stages, name, tmp_path):
    stage = stages[name]
    stage.write().overwrite().save(str(tmp_path / "stage"))
    loaded = type(stage).load(str(tmp_path / "stage"))
    assert type(loaded) is type(stage)
    assert loaded.uid == stage.uid
    assert _explicit(loaded) == _explicit(stage)

    PipelineModel(stages=[stage]).save(str(tmp_path / "pipeline"))
    (inside,) = PipelineModel.load(str(tmp_path / "pipeline")).stages
    assert type(inside) is type(stage)
    assert _explicit(inside) == _explicit(stage)


def test_fitted_model_keeps_the_estimator_params(stages):
    model: TFClassificationModel = stages["TFClassificationModel"]
    assert model.getHiddenLayers() == [3]
    assert model.getSeed() == 9
    assert model.getBatchSize() == 4
