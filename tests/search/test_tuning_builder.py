"""sparktf.tuning.ParamRandomBuilder: random search maps, their ranges and their errors."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from pyspark.ml.tuning import CrossValidator

from sparktf import TFClassifier
from sparktf.tuning import ParamRandomBuilder


@pytest.fixture
def clf():
    return TFClassifier()


def test_tuning_module_does_not_import_tensorflow_or_matplotlib():
    import subprocess

    code = (
        "import sys, sparktf.tuning; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_is_reproducible_and_depends_on_seed(clf):
    builder = (
        ParamRandomBuilder()
        .addLogUniform(clf.learningRate, 1e-4, 1e-1)
        .addUniform(clf.dropout, 0.0, 0.5)
        .addUniform(clf.epochs, 2, 40)
        .addChoice(clf.optimizer, ["adam", "sgd", "rmsprop"])
    )
    first = builder.build(8, seed=11)
    assert len(first) == 8
    assert builder.build(8, seed=11) == first
    other = builder.build(8, seed=12)
    assert other != first
    assert [m[clf.learningRate] for m in other] != [m[clf.learningRate] for m in first]
    # more points with the same seed extend the sample instead of replacing it
    assert builder.build(12, seed=11)[:8] == first
    # a fresh seed each call when none is given
    assert builder.build(8) != builder.build(8)


def test_uniform_float_and_int_ranges(clf):
    maps = (
        ParamRandomBuilder()
        .addUniform(clf.dropout, 0.1, 0.3)
        .addUniform(clf.epochs, 3, 6)
        .build(400, seed=1)
    )
    assert all(type(m[clf.dropout]) is float for m in maps)
    dropout = np.array([m[clf.dropout] for m in maps])
    epochs = [m[clf.epochs] for m in maps]
    assert dropout.min() >= 0.1 and dropout.max() < 0.3
    assert dropout.min() < 0.11 and dropout.max() > 0.29  # the whole range is covered
    assert all(type(v) is int for v in epochs)
    assert sorted(set(epochs)) == [3, 4, 5, 6]  # ints: both ends included


def test_float_param_with_int_bounds_gets_floats(clf):
    maps = ParamRandomBuilder().addUniform(clf.learningRate, 1, 2).build(5, seed=0)
    assert all(type(m[clf.learningRate]) is float for m in maps)
    assert all(1.0 <= m[clf.learningRate] < 2.0 for m in maps)


def test_log_uniform_spreads_evenly_over_decades(clf):
    n = 3000
    rates = np.array(
        [
            m[clf.learningRate]
            for m in ParamRandomBuilder()
            .addLogUniform(clf.learningRate, 1e-4, 1e-1)
            .build(n, seed=5)
        ]
    )
    assert rates.min() >= 1e-4 and rates.max() < 1e-1
    per_decade = np.histogram(np.log10(rates), bins=[-4, -3, -2, -1])[0] / n
    np.testing.assert_allclose(per_decade, [1 / 3] * 3, atol=0.04)
    # a plain uniform draw over the same range puts ~90% of the points in the top decade
    uniform = np.array(
        [
            m[clf.learningRate]
            for m in ParamRandomBuilder().addUniform(clf.learningRate, 1e-4, 1e-1).build(n, seed=5)
        ]
    )
    assert (uniform >= 1e-2).mean() > 0.85


def test_log_uniform_ints(clf):
    sizes = [
        m[clf.batchSize]
        for m in ParamRandomBuilder().addLogUniform(clf.batchSize, 8, 512).build(2000, seed=3)
    ]
    assert all(type(v) is int for v in sizes)
    assert min(sizes) == 8 and max(sizes) == 512
    # log-uniform: as many values below the geometric mean (64) as above it
    below = sum(v < 64 for v in sizes) / len(sizes)
    assert 0.44 < below < 0.56


def test_choice_values_and_list_params(clf):
    choices = [[16], [32, 16], [64, 32, 16]]
    maps = ParamRandomBuilder().addChoice(clf.hiddenLayers, choices).build(300, seed=2)
    got = [m[clf.hiddenLayers] for m in maps]
    assert all(type(v) is list for v in got)
    counts = {str(c): sum(v == c for v in got) for c in choices}
    assert set(counts) == {str(c) for c in choices}
    assert all(70 < c < 130 for c in counts.values()), counts
    got[0].append(99)  # maps never share list objects
    assert all(99 not in v for v in got[1:])


def test_grid_axes_cross_the_same_samples(clf):
    maps = (
        ParamRandomBuilder()
        .addLogUniform(clf.learningRate, 1e-3, 1e-1)
        .addGrid(clf.hiddenLayers, [[8], [16, 8]])
        .addGrid(clf.optimizer, ["adam", "sgd"])
        .baseOn({clf.epochs: 3})
        .build(3, seed=9)
    )
    assert len(maps) == 3 * 2 * 2
    combos = {(tuple(m[clf.hiddenLayers]), m[clf.optimizer]) for m in maps}
    assert combos == {((8,), "adam"), ((8,), "sgd"), ((16, 8), "adam"), ((16, 8), "sgd")}
    rates_per_combo = {}
    for m in maps:
        key = (tuple(m[clf.hiddenLayers]), m[clf.optimizer])
        rates_per_combo.setdefault(key, []).append(m[clf.learningRate])
    rates = list(rates_per_combo.values())
    assert all(r == rates[0] for r in rates) and len(set(rates[0])) == 3
    assert all(m[clf.epochs] == 3 for m in maps)


def test_maps_work_with_a_validator(clf):
    maps = ParamRandomBuilder().addUniform(clf.batchSize, 16, 64).build(4, seed=0)
    cv = CrossValidator(estimator=clf, estimatorParamMaps=maps)
    assert cv.getEstimatorParamMaps() == maps
    # the maps apply to copies of the estimator like grid maps do
    assert [clf.copy(m).getBatchSize() for m in maps] == [m[clf.batchSize] for m in maps]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda b, c: b.addUniform(c.dropout, 0.5, 0.5),
            ValueError,
            r"ParamRandomBuilder.addUniform: the range of the 'dropout' param must have "
            r"low < high. Got low=0.5, high=0.5 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.epochs, 10, 2),
            ValueError,
            r"the range of the 'epochs' param must have low < high. Got low=10, high=2 instead.",
        ),
        (
            lambda b, c: b.addLogUniform(c.learningRate, 0.0, 0.1),
            ValueError,
            r"ParamRandomBuilder.addLogUniform: a log-uniform range needs low > 0, but the "
            r"'learningRate' param got low=0.0, high=0.1.",
        ),
        (
            lambda b, c: b.addLogUniform(c.learningRate, -1e-3, 0.1),
            ValueError,
            r"a log-uniform range needs low > 0, but the 'learningRate' param got low=-0.001",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, 0.0, math.inf),
            ValueError,
            r"the bounds of the 'dropout' param must be finite. Got low=0.0, high=inf instead.",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, "0", 1),
            TypeError,
            r"the bounds of the 'dropout' param must be numbers. Got low='0', high=1 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.epochs, 1.5, 10),
            ValueError,
            r"the 'epochs' param takes ints, so its bounds must be whole numbers. "
            r"Got low=1.5, high=10 instead.",
        ),
        (
            lambda b, c: b.addUniform(c.hiddenLayers, 1, 10),
            TypeError,
            r"ParamRandomBuilder.addUniform: the 'hiddenLayers' param does not take numbers "
            r"\(Could not convert 1.0 to list of ints\); use addChoice or addGrid for it.",
        ),
        (
            lambda b, c: b.addChoice(c.optimizer, []),
            ValueError,
            r"ParamRandomBuilder.addChoice: the 'optimizer' param needs at least one value. "
            r"Got an empty list.",
        ),
        (
            lambda b, c: b.addChoice(c.optimizer, "adam"),
            TypeError,
            r"the values of the 'optimizer' param must be a list. Got str instead.",
        ),
        (
            lambda b, c: b.addChoice(c.hiddenLayers, [[16], "wide"]),
            TypeError,
            r"ParamRandomBuilder.addChoice: 'wide' is not a valid value for the 'hiddenLayers'",
        ),
        (
            lambda b, c: b.addGrid(c.epochs, []),
            ValueError,
            r"ParamRandomBuilder.addGrid: the 'epochs' param needs at least one value",
        ),
        (
            lambda b, c: b.addUniform("learningRate", 0.1, 1.0),
            TypeError,
            r"ParamRandomBuilder.addUniform expects a Param \(e.g. clf.learningRate\). "
            r"Got str instead.",
        ),
        (
            lambda b, c: b.addUniform(c.dropout, 0.0, 0.5).addGrid(c.dropout, [0.1]),
            ValueError,
            r"ParamRandomBuilder.addGrid: the 'dropout' param is already in this builder",
        ),
    ],
)
def test_builder_errors_name_the_param(clf, call, error, message):
    with pytest.raises(error, match=message):
        call(ParamRandomBuilder(), clf)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_build_needs_n_of_at_least_one(clf, n):
    builder = ParamRandomBuilder().addUniform(clf.dropout, 0.0, 0.5)
    with pytest.raises(
        ValueError, match=rf"ParamRandomBuilder.build: n must be an int >= 1. Got {n!r} instead."
    ):
        builder.build(n, seed=0)


def test_build_needs_a_random_axis(clf):
    builder = ParamRandomBuilder().addGrid(clf.epochs, [1, 2])
    with pytest.raises(ValueError, match="no random axis was added"):
        builder.build(3, seed=0)
