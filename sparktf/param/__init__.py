"""Param helpers shared by sparktf stages.

Stages declare Params the pyspark.ml way and reuse pyspark's shared mixins wherever one exists
(``HasFeaturesCol``, ``HasSeed``, ``HasBatchSize``, ``HasLearningRate``, ...). This package holds
what pyspark does not have: value checks that run on the driver before any Spark job, with
messages that name the Param, the stage, what was expected and what was got.
"""

from sparktf.param.validation import (
    check_choice,
    check_float_range,
    check_int_list,
    check_int_range,
    param_error,
    plain_value,
)

__all__ = [
    "check_choice",
    "check_float_range",
    "check_int_list",
    "check_int_range",
    "param_error",
    "plain_value",
]
