"""TFClassifier from a pretrained network (baseModel): the file's weights kept, frozen layers
left as they are, the top layers fine-tuned in a second phase (also across segments and on two
workers), BatchNormalization never training, a fine-tuned model saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest
from transfer_support import NEW_LABELS, QUICK, SIZE, _accuracy, _images

from sparktf import TFClassificationModel, TFClassifier

pytest_plugins = ("transfer_fixtures",)


def _file_weights(path: str) -> dict[str, list[np.ndarray]]:
    import keras

    model = keras.saving.load_model(path, compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers}


def _base_weights(model: TFClassificationModel) -> dict[str, list[np.ndarray]]:
    base = model.keras_model().get_layer("pretrained_base")
    return {layer.name: layer.get_weights() for layer in base.layers}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def frozen_model(bases, quadrants):
    """A new head on the pretrained base, frozen whole: fitted once for the tests that read it."""
    return TFClassifier(baseModel=bases[0], **QUICK).fit(quadrants[0])


@pytest.fixture(scope="module")
def top_layer_model(bases, quadrants):
    """A new head on the pretrained base with its top layer unfrozen: fitted once likewise."""
    return TFClassifier(baseModel=bases[0], trainableLayers=1, **QUICK).fit(quadrants[0])


def test_a_pretrained_base_starts_far_above_chance_where_a_random_one_does_not(
    bases, quadrants, frozen_model
):
    _, random = bases
    train, test = quadrants
    kept = _accuracy(frozen_model, test)  # TFClassifier(baseModel=pretrained, **QUICK) on train
    fresh = _accuracy(TFClassifier(baseModel=random, **QUICK).fit(train), test)
    assert kept >= 0.9, (kept, fresh)
    assert fresh <= 0.6, (kept, fresh)  # four classes: chance is 0.25


def test_frozen_layers_keep_the_files_weights_and_the_unfrozen_top_layer_trains(
    bases, top_layer_model
):
    pretrained, _ = bases
    before, after = _file_weights(pretrained), _base_weights(top_layer_model)
    assert _same(after["conv"], before["conv"])
    assert _same(after["bn"], before["bn"])  # moving statistics too: inference mode
    assert not _same(after["embed"], before["embed"])  # the top layer with weights trains
    assert "classes" not in after  # the default cut drops the classifier head


def test_a_frozen_base_stays_the_files_whole(bases, frozen_model):
    pretrained, _ = bases
    before, after = _file_weights(pretrained), _base_weights(frozen_model)
    assert all(_same(after[name], before[name]) for name in ("conv", "bn", "embed"))


def _task_inputs(pretrained: str, rows, **params):
    """A checked spec and collected data of the quadrants, as the driver hands them a task."""
    from sparktf._classifier_params import training_spec
    from sparktf.training._bases import describe, with_bases
    from sparktf.training._plans import TrainingData

    with open(pretrained, "rb") as handle:
        base = describe(pretrained, handle.read())
    x, quadrant = _images(rows, seed=1)
    data = TrainingData(SIZE * SIZE, 4, x=x.reshape(rows, -1), y=NEW_LABELS[quadrant])
    spec = training_spec(baseModel=pretrained, **{**QUICK, **params})
    data, (spec,) = with_bases(data, [spec], {pretrained: base})
    return spec, data


def _loaded_base(model_bytes: bytes):
    from sparktf._loading import load_keras_bytes

    model = load_keras_bytes(model_bytes)
    return model.get_layer("pretrained_base")


def test_fine_tuning_switches_phase_at_epochs_also_across_segments(bases):
    """Phase one trains the head on a frozen base; phase two, begun by the segment that reaches
    epoch ``epochs`` (here continuing from saved bytes, as the halving search does), unfreezes
    the top layers, which then train; their flags survive the bytes."""
    from sparktf.training._plans import Segment
    from sparktf.training._training import train_one

    pretrained, _ = bases
    spec, data = _task_inputs(pretrained, 160, epochs=2, fineTuneEpochs=2, trainableLayers=-1)
    whole = train_one(0, spec, data)
    assert whole["error"] is None
    assert len(whole["history"]["loss"]) == 4  # epochs + fineTuneEpochs
    before = _file_weights(pretrained)
    first = train_one(0, spec, data, Segment(initial_epoch=0, epochs=2))
    base = _loaded_base(first["model"])
    assert _same(base.get_layer("conv").get_weights(), before["conv"])
    assert not any(layer.trainable for layer in base.layers if layer.weights)
    second = train_one(
        0, spec, data, Segment(initial_epoch=2, epochs=3, start=first["model"], start_logits=True)
    )
    assert len(second["history"]["loss"]) == 1
    base = _loaded_base(second["model"])
    assert not _same(base.get_layer("conv").get_weights(), before["conv"])
    assert [x.name for x in base.layers if x.trainable and x.weights] == ["conv", "embed"]
    assert not base.get_layer("bn").trainable  # BatchNormalization never trains
    assert _same(base.get_layer("bn").get_weights(), before["bn"])  # nor do its statistics
    third = train_one(
        0, spec, data, Segment(initial_epoch=3, epochs=4, start=second["model"], start_logits=True)
    )
    assert third["error"] is None and len(third["history"]["loss"]) == 1
    assert [x.name for x in _loaded_base(third["model"]).layers if x.trainable and x.weights] == [
        "conv",
        "embed",
    ]


def test_a_saved_fine_tuned_model_predicts_the_same_after_loading(
    bases, quadrants, top_layer_model, tmp_path
):
    pretrained, _ = bases
    model = top_layer_model
    model.write().save(str(tmp_path / "model"))
    loaded = TFClassificationModel.load(str(tmp_path / "model"))
    assert loaded.getBaseModel() == pretrained
    first = np.array([r.probability.toArray() for r in model.transform(quadrants[1]).collect()])
    again = np.array([r.probability.toArray() for r in loaded.transform(quadrants[1]).collect()])
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)


def test_batch_normalization_inside_a_nested_block_never_trains():
    import keras

    from sparktf.training._transfer import freeze

    block = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(name="inner")]
    )
    inputs = keras.Input((4,))
    cut = keras.Model(inputs, keras.layers.Dense(2, name="top")(block(inputs)))
    freeze(cut, -1)
    assert block.get_layer("inner").trainable is False
    assert block.layers[0].trainable and cut.get_layer("top").trainable
    freeze(cut, 1)  # the top layer with weights only: the nested block counts as one layer
    assert not block.layers[0].trainable and cut.get_layer("top").trainable


def test_a_base_fine_tunes_on_two_workers_with_its_frozen_layers_kept(bases, quadrants):
    """Two workers on the local session's two slots: the head trains (base frozen), then a
    fine-tuning epoch trains the base's top layer; batch normalization stays in inference mode."""
    pretrained, _ = bases
    train, test = quadrants
    clf = TFClassifier(
        baseModel=pretrained,
        trainableLayers=1,
        fineTuneEpochs=1,
        fineTuneLearningRate=1e-3,
        numWorkers=2,
        **QUICK,
    )
    model = clf.fit(train)
    workers = model.history["worker"]["workers"]
    assert len(workers) == 2 and workers[0]["weightsDigest"] == workers[1]["weightsDigest"]
    assert len(model.history["epochs"]["loss"]) == 2  # the head's epoch, then the fine-tune's
    before, after = _file_weights(pretrained), _base_weights(model)
    assert _same(after["conv"], before["conv"])
    assert _same(after["bn"], before["bn"])  # moving statistics too: inference mode
    assert not _same(after["embed"], before["embed"])  # unfrozen in the second phase
    assert _accuracy(model, test) >= 0.9


def test_a_base_with_large_features_learns_its_new_head_at_a_small_learning_rate(
    bases, quadrants, tmp_path
):
    import keras

    # The same network with its feature layer's outputs 50 times larger (the old head scaled
    # back): pretrained features are often ReLU outputs of such sizes.
    pretrained, _ = bases
    network = keras.saving.load_model(pretrained)
    kernel, bias = network.get_layer("embed").get_weights()
    network.get_layer("embed").set_weights([kernel * 50.0, bias * 50.0])
    kernel, bias = network.get_layer("classes").get_weights()
    network.get_layer("classes").set_weights([kernel / 50.0, bias])
    network.save(tmp_path / "large.keras")
    train, test = quadrants
    quick = {**QUICK, "learningRate": 1e-3}
    model = TFClassifier(baseModel=str(tmp_path / "large.keras"), **quick).fit(train)
    assert _accuracy(model, test) >= 0.9
