"""Every stage's Params come from one declaration each: getters, setters, defaults, keyword
signatures and checks agree with it, for every Param of every stage."""

from __future__ import annotations

import inspect

import pytest

from sparktf import TFClassifier, TFGraphTransformer
from sparktf.classification import TFClassificationModel
from sparktf.search import HalvingCrossValidator, HalvingTrainValidationSplit

pytestmark = pytest.mark.unit

STAGES = [TFClassifier, TFGraphTransformer, HalvingCrossValidator, HalvingTrainValidationSplit]


def _title(name: str) -> str:
    return name[0].upper() + name[1:]


@pytest.mark.parametrize("cls", STAGES, ids=lambda c: c.__name__)
def test_signature_shows_the_true_defaults(cls):
    stage = cls()
    keywords = inspect.signature(cls).parameters
    assert keywords, "the constructor shows its keywords"
    for name, keyword in keywords.items():
        assert keyword.kind is inspect.Parameter.KEYWORD_ONLY
        assert stage.hasParam(name), name
        if stage.hasDefault(name):
            assert keyword.default == stage.getOrDefault(name), name
        else:
            assert keyword.default is None, name
    assert inspect.signature(cls.setParams).parameters.keys() - {"self"} == keywords.keys()


@pytest.mark.parametrize("cls", STAGES, ids=lambda c: c.__name__)
def test_every_keyword_has_a_getter_and_a_setter(cls):
    stage = cls()
    for name in inspect.signature(cls).parameters:
        getter, setter = getattr(stage, f"get{_title(name)}"), getattr(stage, f"set{_title(name)}")
        if stage.hasDefault(name):
            value = getter()
            assert setter(value) is stage
            assert stage.isSet(name) and getter() == value


def test_setters_and_keywords_set_the_same_values():
    by_keyword = TFClassifier(hiddenLayers=[8], epochs=3, numWorkers=2, batchSize=64)
    by_setter = TFClassifier().setHiddenLayers([8]).setEpochs(3).setNumWorkers(2).setBatchSize(64)
    for name in ("hiddenLayers", "epochs", "numWorkers", "batchSize"):
        assert by_keyword.getOrDefault(name) == by_setter.getOrDefault(name)
    assert TFClassifier().setParams(epochs=4).getEpochs() == 4


def test_a_returned_list_or_dict_is_a_copy():
    clf = TFClassifier(hiddenLayers=[8, 4])
    clf.getHiddenLayers().append(99)
    assert clf.getHiddenLayers() == [8, 4]
    transformer = TFGraphTransformer(inputMapping={"x": "in:0"})
    transformer.getInputMapping()["y"] = "other:0"
    assert transformer.getInputMapping() == {"x": "in:0"}
    # Defaults are not shared between stages either.
    TFClassifier().getHiddenLayers().append(1)
    assert TFClassifier().getHiddenLayers() == [128, 64]


@pytest.mark.parametrize("cls", STAGES, ids=lambda c: c.__name__)
def test_an_unknown_keyword_is_a_type_error(cls):
    with pytest.raises(TypeError, match=f"{cls.__name__}.__init__: .*'hiddenLayer'"):
        cls(hiddenLayer=[8])
    with pytest.raises(TypeError, match=r"setParams: .*'nope'"):
        cls().setParams(nope=1)


def test_none_leaves_a_param_alone_but_a_none_seed_is_refused():
    clf = TFClassifier(hiddenLayers=None, validationIndicatorCol=None)
    assert clf.getHiddenLayers() == [128, 64]
    assert not clf.isDefined("validationIndicatorCol")
    with pytest.raises(TypeError, match="Got seed=None"):
        TFClassifier(seed=None)
    with pytest.raises(TypeError, match="Got seed=None"):
        TFClassifier().setSeed(None)


def test_the_declared_checks_name_stage_param_and_value():
    with pytest.raises(ValueError, match=r"'epochs' param of TFClassifier must be an int in \[1"):
        TFClassifier(epochs=0)._training_spec()
    with pytest.raises(ValueError, match=r"'optimizer' param of TFClassifier must be one of"):
        TFClassifier(optimizer="adamax")._training_spec()
    with pytest.raises(ValueError, match=r"'channelOrder' param of TFGraphTransformer"):
        TFGraphTransformer(channelOrder="gbr")._check_params()
    with pytest.raises(ValueError, match=r"'factor' param of HalvingCrossValidator"):
        HalvingCrossValidator(factor=0, estimator=TFClassifier(), estimatorParamMaps=[{}])._plan(
            TFClassifier(), [{}], None
        )
    with pytest.raises(ValueError, match=r"'trainRatio' param of HalvingTrainValidationSplit"):
        HalvingTrainValidationSplit(trainRatio=1.0)._split()


def test_the_model_shares_the_declared_params_and_defaults():
    model = TFClassificationModel()
    assert model.getHiddenLayers() == [128, 64]
    assert model.getSeed() == TFClassifier().getSeed()
    assert model.getPredictBatchSize() == 1024
