"""The Params of :class:`~sparktf.transformer.TFGraphTransformer`: one declaration each (doc,
converter, default, check), with the type converters of its mapping Params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.ml.param import TypeConverters
from pyspark.ml.param.shared import HasBatchSize, HasHandleInvalid, HasInputCol, HasOutputCol

from sparktf.image import SCALINGS
from sparktf.inference._plan import CHANNEL_ORDERS, HANDLE_INVALID, MODEL_FORMATS, OUTPUT_TYPES
from sparktf.param.declare import Choice, Declared, IntRange, declare_params

__all__ = ["TFGraphTransformerParams"]


# -- type converters for the mapping Params (JSON-serializable dicts) --------------------------


def _to_str_dict(value: Any) -> dict[str, str]:
    """Type converter: a mapping of str -> str (e.g. column -> tensor name)."""
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise TypeError(f"Could not convert {value!r} to a dict of str -> str.")


def _to_shape_dict(value: Any) -> dict[str, list[int]]:
    """Type converter: a mapping of column -> shape (list of ints)."""
    if isinstance(value, Mapping):
        result: dict[str, list[int]] = {}
        for key, shape in value.items():
            if not isinstance(key, str) or not isinstance(shape, (list, tuple)):
                break
            if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
                break
            result[key] = [int(d) for d in shape]
        else:
            return result
    raise TypeError(f"Could not convert {value!r} to a dict of column -> list of ints.")


#: Every Param of TFGraphTransformer, in the order of its keywords: one declaration each.
DECLARED = (
    Declared(
        "modelPath",
        "path of the model: a frozen GraphDef file (.pb), a SavedModel directory, or a Keras "
        "file (.keras, .h5); any filesystem Spark can read when broadcastModel is true. Empty "
        "when the transformer was built from model bytes",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "modelFormat",
        "format of the model (one of: " + ", ".join(MODEL_FORMATS) + "); 'auto' detects it from "
        "the path (directory: savedmodel; .keras/.h5: keras; else graphdef) or the bytes",
        TypeConverters.toString,
        "auto",
        Choice(MODEL_FORMATS),
        "str",
    ),
    Declared(
        "signatureName",
        "SavedModel signature to run (a key of the model's signatures, e.g. serving_default)",
        TypeConverters.toString,
        "serving_default",
        kind="str",
    ),
    Declared(
        "broadcastModel",
        "if true, the driver reads the model and broadcasts it (a path only the driver sees "
        "works); if false, each Python worker reads modelPath itself, which must then be a path "
        "every worker sees (local or a filesystem TensorFlow can read): for large models",
        TypeConverters.toBoolean,
        True,
        kind="bool",
    ),
    Declared("inputCol", kind="str | None"),
    Declared("outputCol", default="prediction", kind="str"),
    Declared(
        "inputMapping",
        "input column -> input tensor name (dict of str -> str), one entry per model input; "
        "empty: inputCol feeds the model's only input",
        _to_str_dict,
        {},
        kind="dict[str, str]",
    ),
    Declared(
        "outputMapping",
        "output tensor name -> output column (dict of str -> str), one entry per wanted output; "
        "empty: the model's only output goes to outputCol",
        _to_str_dict,
        {},
        kind="dict[str, str]",
    ),
    Declared(
        "inputShapes",
        "input column -> shape one row is reshaped to, without the batch dimension (dict of "
        "str -> list of ints >= 1); needed only when the tensor's static shape has unknown sizes",
        _to_shape_dict,
        {},
        kind="dict[str, list[int]]",
    ),
    Declared(
        "outputTypes",
        "output column -> column type (one of: " + ", ".join(OUTPUT_TYPES) + "). 'auto': double "
        "for one number per row (shape [?] or [?, 1]), array<float> for several (flattened), "
        "long/string/boolean (or arrays of them) for integer/string/bool tensors; 'vector': an "
        "ml DenseVector",
        _to_str_dict,
        {},
        kind="dict[str, str]",
    ),
    Declared(
        "batchSize",
        "rows fed to the model per TensorFlow call (int >= 1)",
        TypeConverters.toInt,
        256,
        IntRange(1),
        "int",
    ),
    Declared("handleInvalid", default="error", check=Choice(HANDLE_INVALID), kind="str"),
    Declared(
        "imageSize",
        "[height, width] images are resized to (list of two ints >= 1); empty: the input "
        "tensor's static size",
        TypeConverters.toListInt,
        [],
        kind="list[int]",
    ),
    Declared(
        "imageScaling",
        "pixel scaling the model expects (one of: none (0..255), unit ([0, 1]), signed ([-1, 1]))",
        TypeConverters.toString,
        "unit",
        Choice(SCALINGS),
        "str",
    ),
    Declared(
        "channelOrder",
        "channel order the model expects for 3-channel images (one of: rgb, bgr)",
        TypeConverters.toString,
        "rgb",
        Choice(CHANNEL_ORDERS),
        "str",
    ),
    Declared(
        "scaledDecode",
        "if true, JPEG bytes are decoded at the smallest 1/2, 1/4 or 1/8 scale still at least "
        "imageSize, then resized (several times faster on photos; pixels differ from a full "
        "decode by a fraction of a grey level on average); false: full decode, then resize",
        TypeConverters.toBoolean,
        True,
        kind="bool",
    ),
    Declared(
        "freezeModel",
        "if true, a Keras model runs as a frozen graph (its variables folded into constants, "
        "which lets TensorFlow fold batch normalization into convolutions): faster per batch, "
        "for a one-time cost of one to a few seconds in each Python worker; GraphDefs are "
        "frozen already and SavedModels run as they are",
        TypeConverters.toBoolean,
        False,
        kind="bool",
    ),
    Declared(
        "labels",
        "class names, one per score of scoresCol (list of str); with labelsPath unset, enables "
        "the topKCol column when non-empty",
        TypeConverters.toListString,
        [],
        kind="list[str]",
    ),
    Declared(
        "labelsPath",
        "path of a text file with one class name per line (read on the driver); alternative to "
        "labels",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "topK",
        "number of (label, score) pairs per row in topKCol, highest score first (int >= 1)",
        TypeConverters.toInt,
        5,
        IntRange(1),
        "int",
    ),
    Declared(
        "topKCol",
        "output column of the top-K labels, array<struct<label:string, score:float>>; written "
        "only when labels or labelsPath is set",
        TypeConverters.toString,
        "topK",
        kind="str",
    ),
    Declared(
        "scoresCol",
        "output column whose scores are ranked for topKCol; empty: the only output column",
        TypeConverters.toString,
        "",
        kind="str",
    ),
    Declared(
        "pathCol",
        "string column naming each row's source file, used in error messages when present "
        "(e.g. 'path' from the binaryFile data source); image structs use their origin",
        TypeConverters.toString,
        "path",
        kind="str",
    ),
)


@declare_params(*DECLARED)
class TFGraphTransformerParams(HasInputCol, HasOutputCol, HasBatchSize, HasHandleInvalid):
    """Params of :class:`TFGraphTransformer`."""
