# The type stub of sparktf, written by 'python -m sparktf.param.stubs' from the
# module and its Param declarations. Do not edit: change the module and run it again.

from sparktf.errors import DriverMemoryError as DriverMemoryError
from sparktf.search import HalvingCrossValidator as HalvingCrossValidator
from sparktf.search import HalvingTrainValidationSplit as HalvingTrainValidationSplit
from sparktf.errors import InvalidImageError as InvalidImageError
from sparktf.errors import JavaNotFoundError as JavaNotFoundError
from sparktf.errors import ModelSourceError as ModelSourceError
from sparktf.errors import NotEnoughSlotsError as NotEnoughSlotsError
from sparktf.tuning import ParamRandomBuilder as ParamRandomBuilder
from sparktf.classification import TFClassificationModel as TFClassificationModel
from sparktf.classification import TFClassifier as TFClassifier
from sparktf.transformer import TFGraphTransformer as TFGraphTransformer
from sparktf.errors import TrainingError as TrainingError
from sparktf.errors import TrialFailedError as TrialFailedError
from sparktf.errors import UnknownTensorError as UnknownTensorError
from sparktf.errors import UnsafeModelError as UnsafeModelError
from sparktf.session import get_spark as get_spark
from sparktf.tuning import plot_sensitivity as plot_sensitivity
from sparktf.classification import trial_scope as trial_scope
from sparktf.workflow import tune_classifier as tune_classifier
from sparktf.tuning import tuning_report as tuning_report

__version__: str
__all__ = ["DriverMemoryError", "HalvingCrossValidator", "HalvingTrainValidationSplit", "InvalidImageError", "JavaNotFoundError", "ModelSourceError", "NotEnoughSlotsError", "ParamRandomBuilder", "TFClassificationModel", "TFClassifier", "TFGraphTransformer", "TrainingError", "TrialFailedError", "UnknownTensorError", "UnsafeModelError", "get_spark", "plot_sensitivity", "trial_scope", "tune_classifier", "tuning_report"]
