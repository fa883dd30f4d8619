"""TFClassifier from a pretrained network (baseModel): weights kept, frozen or fine-tuned."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from rows import rows_by  # tests/rows.py

from sparktf import TFClassificationModel, TFClassifier
from sparktf.search import HalvingTrainValidationSplit

SIZE = 16
# Each class lights one quadrant of a 16x16 image; the new task names the quadrants anew.
NEW_LABELS = np.array([2, 0, 3, 1])


def _images(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quadrant = rng.integers(0, 4, rows)
    x = rng.normal(0.0, 1.0, (rows, SIZE, SIZE, 1)).astype(np.float32)
    half = SIZE // 2
    for i, q in enumerate(quadrant):
        top, left = (q // 2) * half, (q % 2) * half
        x[i, top : top + half, left : left + half] += 1.0
    return x, quadrant


def _network(keras):
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.MaxPooling2D(4, name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(8, activation="relu", name="embed")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def bases(tmp_path_factory):
    """A tiny conv net pretrained on the quadrants, and the same network untrained (paths)."""
    import keras

    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("bases")
    x, y = _images(600, seed=0)
    trained = _network(keras)
    trained.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    trained.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert trained.evaluate(x, y, verbose=0)[1] > 0.95  # the pretraining worked
    trained.save(folder / "pretrained.keras")
    _network(keras).save(folder / "random.keras")
    return str(folder / "pretrained.keras"), str(folder / "random.keras")


@pytest.fixture(scope="session")
def quadrants(spark):
    """New images of the same kind with new labels: (train, test) DataFrames."""

    def frame(rows: int, seed: int):
        x, quadrant = _images(rows, seed)
        data = [
            (Vectors.dense(row.ravel().tolist()), float(NEW_LABELS[q]))
            for row, q in zip(x, quadrant, strict=True)
        ]
        return spark.createDataFrame(data, ["features", "label"]).cache()

    return frame(320, seed=1), frame(200, seed=2)


def _accuracy(model, df) -> float:
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return evaluator.evaluate(model.transform(df))


def _file_weights(path: str) -> dict[str, list[np.ndarray]]:
    import keras

    model = keras.saving.load_model(path, compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers}


def _base_weights(model: TFClassificationModel) -> dict[str, list[np.ndarray]]:
    base = model.keras_model().get_layer("pretrained_base")
    return {layer.name: layer.get_weights() for layer in base.layers}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


QUICK = {"hiddenLayers": [], "epochs": 1, "learningRate": 0.05, "batchSize": 16}


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


def test_a_grid_over_trainable_layers_and_fine_tune_rate_fits_in_a_cross_validator(
    bases, quadrants
):
    pretrained, _ = bases
    clf = TFClassifier(baseModel=pretrained, fineTuneEpochs=1, **QUICK)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.trainableLayers, [0, -1])
        .addGrid(clf.fineTuneLearningRate, [1e-4, 1e-3])
        .build()
    )
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    cv = CrossValidator(estimator=clf, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2)
    model = cv.fit(quadrants[0])
    assert len(model.avgMetrics) == 4 and min(model.avgMetrics) > 0.3  # chance: 0.25
    assert len(model.bestModel.history["epochs"]["loss"]) == 2  # epochs + fineTuneEpochs
    assert model.bestModel.getTrainableLayers() in (0, -1)


def test_a_halving_search_over_fine_tuning_fits(bases, quadrants):
    pretrained, _ = bases
    clf = TFClassifier(baseModel=pretrained, fineTuneEpochs=2, **QUICK)
    grid = (
        ParamGridBuilder()
        .addGrid(clf.trainableLayers, [0, 1])
        .addGrid(clf.fineTuneLearningRate, [1e-4, 1e-3])
        .build()
    )
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        factor=2,
        seed=3,
    )
    model = search.fit(quadrants[0])
    # the budget is epochs + fineTuneEpochs: the last rung's maps trained all three
    # rungs of 2 then 3 epochs: the first crosses into fine-tuning, the second continues it
    assert sorted(t["epochs"] for t in model.trials) == [2, 2, 3, 3]
    assert len(model.bestModel.history["epochs"]["loss"]) == 3
    assert _accuracy(model.bestModel, quadrants[1]) >= 0.8


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


# -- bad input: each a clear error before any training job -----------------------------------


def test_a_missing_base_file_is_named(quadrants, tmp_path):
    missing = str(tmp_path / "nowhere.keras")
    with pytest.raises(ValueError, match=r"'baseModel' .* existing \.keras file.*nowhere\.keras"):
        TFClassifier(baseModel=missing, **QUICK).fit(quadrants[0])


def test_a_file_that_is_not_a_keras_model_is_refused(quadrants, tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    with pytest.raises(ValueError, match=r"'baseModel' .* must be a \.keras file .*notes\.keras"):
        TFClassifier(baseModel=str(path), **QUICK).fit(quadrants[0])


def test_a_saved_model_folder_is_refused_with_the_way_to_a_keras_file(quadrants, tmp_path):
    folder = tmp_path / "exported"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ValueError, match=r"is a TensorFlow SavedModel folder.*model\.save"):
        TFClassifier(baseModel=str(folder), **QUICK).fit(quadrants[0])


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


def test_an_unknown_feature_layer_lists_the_bases_layers(bases, quadrants):
    with pytest.raises(ValueError, match=r"'featureLayer' .* Got 'embedding'.*'embed', 'classes'"):
        TFClassifier(baseModel=bases[0], featureLayer="embedding", **QUICK).fit(quadrants[0])


def test_features_the_base_cannot_take_are_refused(bases, spark):
    narrow = spark.createDataFrame([(Vectors.dense([0.0] * 10), float(i % 2)) for i in range(8)])
    narrow = narrow.toDF("features", "label")
    with pytest.raises(ValueError, match=r"inputs of shape \[16, 16, 1\] \(256 values\).* 10"):
        TFClassifier(baseModel=bases[0], **QUICK).fit(narrow)


def test_an_input_shape_that_disagrees_with_the_base_is_refused(bases, quadrants):
    with pytest.raises(ValueError, match=r"'inputShape' .* input shape is \[16, 16, 1\]"):
        TFClassifier(baseModel=bases[0], inputShape=[256], **QUICK).fit(quadrants[0])


@pytest.mark.parametrize(
    ("other", "value"), [("convLayers", [4]), ("kerasModel", '{"class_name": "Sequential"}')]
)
def test_a_base_with_another_body_is_refused(other, value):
    clf = TFClassifier(baseModel="base.keras", **{other: value})
    with pytest.raises(ValueError, match=rf"'baseModel' .* cannot be combined with '{other}'"):
        clf._training_spec()


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


def test_a_halving_search_refuses_fine_tune_epochs_in_its_grid(bases, quadrants):
    clf = TFClassifier(baseModel=bases[0], **QUICK)
    grid = ParamGridBuilder().addGrid(clf.fineTuneEpochs, [1, 2]).build()
    search = HalvingTrainValidationSplit(
        estimator=clf,
        estimatorParamMaps=grid,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        factor=2,
    )
    with pytest.raises(ValueError, match=r"'fineTuneEpochs' is the budget the halving search"):
        search.fit(quadrants[0])


# -- a base fine-tuned on an image column ----------------------------------------------------------


@pytest.fixture(scope="session")
def quadrant_files(spark, tmp_path_factory):
    """The new task as PNG files (16x16 grey), read by binaryFile: (train, test) DataFrames."""
    from PIL import Image
    from pyspark.sql import functions as F

    def frame(rows: int, seed: int, folder):
        x, quadrant = _images(rows, seed)
        pixels = np.clip((x[..., 0] + 2.0) * 50.0, 0, 255).astype(np.uint8)
        for i, (image, q) in enumerate(zip(pixels, quadrant, strict=True)):
            Image.fromarray(image).save(folder / f"{i:04d}_{NEW_LABELS[q]}.png")
        files = spark.read.format("binaryFile").load(str(folder))
        label = F.regexp_extract("path", r"_(\d)\.png$", 1).cast("double")
        return files.select("path", "content", label.alias("label")).cache()

    root = tmp_path_factory.mktemp("quadrant_files")
    (root / "train").mkdir()
    (root / "test").mkdir()
    return frame(320, 1, root / "train"), frame(200, 2, root / "test")


def test_a_base_fine_tunes_on_an_image_column_at_its_own_input_size(bases, quadrant_files):
    pretrained, random = bases
    train, test = quadrant_files
    image = {"featuresCol": "content", "imageChannels": 1, "imageScaling": "standardize"}
    kept = TFClassifier(baseModel=pretrained, **image, **QUICK).fit(train)  # no imageSize
    fresh = TFClassifier(baseModel=random, **image, **QUICK).fit(train)
    assert kept.keras_model().input_shape == (None, SIZE, SIZE, 1)
    kept_accuracy, fresh_accuracy = _accuracy(kept, test), _accuracy(fresh, test)
    assert kept_accuracy >= 0.9, (kept_accuracy, fresh_accuracy)
    assert fresh_accuracy <= 0.6, (kept_accuracy, fresh_accuracy)
    # the same images as paths: the model decodes them as in training
    by_path = kept.setFeaturesCol("path").transform(test.drop("content"))
    by_content = kept.setFeaturesCol("content").transform(test)
    assert rows_by(by_path.select("path", "prediction"), "path") == rows_by(
        by_content.select("path", "prediction"), "path"
    )


def test_an_image_column_that_disagrees_with_the_base_is_refused(bases, quadrant_files):
    pretrained, _ = bases
    train, _ = quadrant_files
    image = {"featuresCol": "content", "imageScaling": "unit", **QUICK}
    with pytest.raises(ValueError, match=r"'imageSize' param .* whose input is \[16, 16\] pixels"):
        TFClassifier(baseModel=pretrained, imageSize=[8, 8], imageChannels=1, **image).fit(train)
    with pytest.raises(ValueError, match=r"'imageChannels' param .* must be the 1 channel\(s\)"):
        TFClassifier(baseModel=pretrained, **image).fit(train)


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
