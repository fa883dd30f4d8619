"""The exceptions sparktf raises for users to catch.

Bad Param values and bad input data raise the built-in ``ValueError`` and ``TypeError`` (with a
message naming the Param or column, what was expected and what was got); these classes cover
what those do not. Each is also importable from the module that raises it
(``sparktf.inference._sources``, ``sparktf._loading``, ``sparktf.image``, ``sparktf.session``,
``sparktf.classification``).
"""

from __future__ import annotations

__all__ = [
    "DriverMemoryError",
    "InvalidImageError",
    "JavaNotFoundError",
    "ModelSourceError",
    "NotEnoughSlotsError",
    "TrainingError",
    "TrialFailedError",
    "UnknownTensorError",
    "UnsafeModelError",
]


class TrainingError(RuntimeError):
    """Training of a TFClassifier failed (for a single fit), or every trial of a search failed."""


class TrialFailedError(TrainingError):
    """Raised in strict mode (``failOnTrialError=True``) when one trial of a search fails."""


class DriverMemoryError(MemoryError):
    """The training data would not fit the driver's memory; raised before anything is collected.

    The message names the data's size, the driver's limit and the two ways out: more driver
    memory (``spark.driver.memory``), or staging the data as files that the training tasks
    stream (a ``maxBroadcastBytes`` below the data's size).
    """


class NotEnoughSlotsError(RuntimeError):
    """A TFClassifier with ``numWorkers`` > 1 needs more task slots than the cluster has.

    Its workers run as one barrier stage, all at once; the message names the slots needed and
    found. Raised before the stage starts (classic sessions), or when Spark's own barrier check
    gives up (over Connect).
    """


class ModelSourceError(ValueError):
    """A model that cannot be read: missing, corrupt, or of an unknown format."""


class UnknownTensorError(ValueError):
    """A tensor name that the model does not have (the message lists the ones it has)."""


class UnsafeModelError(ValueError):
    """A model refused because loading it would run Python code stored in it (e.g. a Keras
    ``Lambda`` layer), which sparktf does not do unless ``SPARKTF_UNSAFE_LOADING=1`` is set
    (:data:`sparktf._loading.UNSAFE_LOADING_ENV`)."""


class InvalidImageError(ValueError):
    """An image that cannot be decoded or converted (corrupt bytes, unknown format, bad struct)."""


class JavaNotFoundError(RuntimeError):
    """Raised when no Java runtime is available to start Spark."""
