"""Values shipped to the workers for a fit, a fold or a rung are freed once no task reads them
(``sparktf/_spark/_shared.py``): nothing of them is left on the driver, however many fits ran."""

from __future__ import annotations

import os

from pyspark.ml.evaluation import MulticlassClassificationEvaluator


def _driver_files(spark) -> list[str]:
    """The files pyspark keeps on the driver for its live broadcasts (one each)."""
    return sorted(os.listdir(spark.sparkContext._temp_dir))


def _still_valid(shipped) -> list[int]:
    """The broadcasts of ``shipped`` not destroyed (their blocks and file may be read again)."""
    return [s._broadcast._jbroadcast.id() for s in shipped if s._broadcast._jbroadcast.isValid()]


def test_fits_folds_and_rungs_leave_no_broadcast_on_the_driver(spark, digits, monkeypatch):
    import sparktf._spark as port
    from sparktf import TFClassifier
    from sparktf.search import HalvingCrossValidator

    shipped = []
    share = port.share

    def recorded(session, value):
        shared = share(session, value)
        shipped.append(shared)
        return shared

    monkeypatch.setattr(port, "share", recorded)
    train, _ = digits
    clf = TFClassifier(hiddenLayers=[8], epochs=2, batchSize=128, seed=1)
    maps = [{clf.learningRate: 0.01}, {clf.learningRate: 0.03}]
    before = _driver_files(spark)
    assert len(list(clf.fitMultiple(train, maps))) == 2  # one broadcast of the data
    assert _driver_files(spark) == before
    search = HalvingCrossValidator(  # the data of every fold, each rung's starting models
        estimator=clf,
        estimatorParamMaps=maps,
        evaluator=MulticlassClassificationEvaluator(metricName="accuracy"),
        numFolds=2,
        seed=3,
    )
    search.fit(train)
    assert _driver_files(spark) == before
    assert len(shipped) >= 4, len(shipped)  # the fit, the search's data and rungs, its refit
    assert _still_valid(shipped) == []
