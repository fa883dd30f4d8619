"""The Params of the halving validators and their fitted models (:mod:`sparktf.search`)."""

from __future__ import annotations

from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters

__all__ = ["_HalvingParams"]


class _HalvingParams(Params):
    """The Params of the halving search, shared by the validators and their models."""

    factor = Param(
        Params._dummy(),
        "factor",
        "each rung keeps the best 1/factor of the maps and trains factor times the epochs "
        "(int >= 1; 1: no halving, every map trains every epoch)",
        typeConverter=TypeConverters.toInt,
    )
    minEpochs = Param(
        Params._dummy(),
        "minEpochs",
        "epochs every map trains in the first rung, at least (int >= 1)",
        typeConverter=TypeConverters.toInt,
    )
    checkpointDir = Param(
        Params._dummy(),
        "checkpointDir",
        "folder (local, shared, hdfs://, s3://, ...) where every finished trial is written; a "
        "search run again with the same folder skips them ('': none)",
        typeConverter=TypeConverters.toString,
    )
    trialTimeout = Param(
        Params._dummy(),
        "trialTimeout",
        "seconds a trial (one map on one fold) may train in all; past it, it stops at the end "
        "of its epoch and goes no further (float >= 0; 0: no limit)",
        typeConverter=TypeConverters.toFloat,
    )
    searchTimeout = Param(
        Params._dummy(),
        "searchTimeout",
        "seconds the whole search may take; running trials stop at the end of their epoch and "
        "no rung starts past it (float >= 0; 0: no limit; the refit is not counted)",
        typeConverter=TypeConverters.toFloat,
    )
    refit = Param(
        Params._dummy(),
        "refit",
        "whether bestModel is the best map trained again on the whole data (else: the best "
        "map's model of the first fold, trained without its held-out rows)",
        typeConverter=TypeConverters.toBoolean,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            factor=3, minEpochs=1, checkpointDir="", trialTimeout=0.0, searchTimeout=0.0, refit=True
        )

    def getFactor(self) -> int:
        return self.getOrDefault(self.factor)

    def getMinEpochs(self) -> int:
        return self.getOrDefault(self.minEpochs)

    def getCheckpointDir(self) -> str:
        return self.getOrDefault(self.checkpointDir)

    def getTrialTimeout(self) -> float:
        return self.getOrDefault(self.trialTimeout)

    def getSearchTimeout(self) -> float:
        return self.getOrDefault(self.searchTimeout)

    def getRefit(self) -> bool:
        return self.getOrDefault(self.refit)
