"""The Params of the halving validators and their fitted models (:mod:`sparktf.search`)."""

from __future__ import annotations

from pyspark.ml.param import Params, TypeConverters

from sparktf.param.declare import Declared, FloatRange, IntRange, declare_params
from sparktf.training._plans import DEFAULT_SEED

__all__ = ["DECLARED", "_HalvingParams", "validator_params"]


#: The halving search's own Params: one declaration each.
DECLARED = (
    Declared(
        "factor",
        "each rung keeps the best 1/factor of the maps and trains factor times the epochs "
        "(int >= 1; 1: no halving, every map trains every epoch)",
        TypeConverters.toInt,
        3,
        IntRange(1),
        "int",
    ),
    Declared(
        "minEpochs",
        "epochs every map trains in the first rung, at least (int >= 1)",
        TypeConverters.toInt,
        1,
        IntRange(1),
        "int",
    ),
    Declared(
        "checkpointDir",
        "folder (local, shared, hdfs://, s3://, ...) where every finished trial is written; a "
        "search run again with the same folder skips them ('': none)",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "trialTimeout",
        "seconds a trial (one map on one fold) may train in all; past it, it stops at the end "
        "of its epoch and goes no further (float >= 0; 0: no limit)",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0),
        "float",
    ),
    Declared(
        "searchTimeout",
        "seconds the whole search may take; running trials stop at the end of their epoch and "
        "no rung starts past it (float >= 0; 0: no limit; the refit is not counted)",
        TypeConverters.toFloat,
        0.0,
        FloatRange(0.0),
        "float",
    ),
    Declared(
        "refit",
        "whether bestModel is the best map trained again on the whole data (else: the best "
        "map's model of the first fold, trained without its held-out rows)",
        TypeConverters.toBoolean,
        True,
        kind="bool",
    ),
    Declared(
        "mlflowExperiment",
        "MLflow experiment the search is tracked in as it runs (created if missing; the "
        "tracking URI from MLflow's environment): a run for the search, one nested run per "
        "param map with its curves, rungs and outcome, the best model. Under an active MLflow "
        "run, that run is the search's. Needs the mlflow package ('': not tracked)",
        TypeConverters.toString,
        "",
        kind="str",
    ),
)


def validator_params(split: Declared) -> tuple[Declared, ...]:
    """The keywords of a halving validator before its own Params, as pyspark's validators have
    them; ``split`` is ``numFolds`` or ``trainRatio``. pyspark's validators default their seed
    to hash(class name), which differs between Python processes; a search that can be resumed
    needs the same folds in every process, so the seed is fixed. ``parallelism`` defaults to
    no limit where pyspark's is 1 thread: a TFClassifier's ``fitMultiple`` trains every map of
    a fold at once whatever pyspark's threads, and so does a rung by default."""
    return (
        Declared("estimator", kind="Estimator | None"),
        Declared("estimatorParamMaps", kind="list[dict] | None"),
        Declared("evaluator", kind="Evaluator | None"),
        split,
        Declared("seed", default=DEFAULT_SEED, check=IntRange(), kind="int", keep_none=True),
        Declared(
            "parallelism",
            "how many trials (a map on a fold) of a rung train at once, at most: the rung runs "
            "as Spark jobs of at most this many tasks, one after another (int >= 0; 0: no "
            "limit, every trial of a rung in one job, as many at once as the cluster has slots)",
            TypeConverters.toInt,
            0,
            IntRange(0),
            "int",
        ),
        Declared("collectSubModels", default=False, kind="bool"),
    )


@declare_params(*DECLARED)
class _HalvingParams(Params):
    """The Params of the halving search, shared by the validators and their models."""
