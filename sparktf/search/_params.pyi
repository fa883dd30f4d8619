# The type stub of sparktf.search._params, written by 'python -m sparktf.param.stubs' from the
# module and its Param declarations. Do not edit: change the module and run it again.

from pyspark.ml.param import Param
from pyspark.ml.param import Params, TypeConverters
from sparktf.param.declare import Declared, FloatRange, IntRange, declare_params
from sparktf.training._plans import DEFAULT_SEED
__all__ = ['DECLARED', '_HalvingParams', 'validator_params']
DECLARED: tuple


def validator_params(split: Declared) -> tuple[Declared, ...]: ...


class _HalvingParams(Params):
    factor: Param[int]
    minEpochs: Param[int]
    checkpointDir: Param[str]
    trialTimeout: Param[float]
    searchTimeout: Param[float]
    refit: Param[bool]
    mlflowExperiment: Param[str]

    def getFactor(self) -> int: ...

    def getMinEpochs(self) -> int: ...

    def getCheckpointDir(self) -> str: ...

    def getTrialTimeout(self) -> float: ...

    def getSearchTimeout(self) -> float: ...

    def getRefit(self) -> bool: ...

    def getMlflowExperiment(self) -> str: ...
