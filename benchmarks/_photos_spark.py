"""The Spark sides of benchmarks/bench_photos.py: the ``TFGraphTransformer`` stages (c), the
documentation's recipe (b), the pandas-UDF floor (d), reading the JPEGs with ``binaryFile``,
keeping the session's Python workers alive while the driver works alone, and collecting scores.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from typing import Any

import _photos as photos
import numpy as np
import pandas as pd

#: Names the Param switching scaled JPEG decoding may have, tried in this order.
DECODE_PARAMS = ("fastDecode", "decodeScale", "scaledDecode", "jpegDraft")
#: TensorFlow threads in the session's Python workers (two tasks share two cores).
WORKER_THREADS = {
    "spark.executorEnv.TF_NUM_INTRAOP_THREADS": "1",
    "spark.executorEnv.TF_NUM_INTEROP_THREADS": "1",
}


def write_noop(frame: Any) -> None:
    """Run ``frame`` into Spark's ``noop`` sink, as every Spark side is run and timed."""
    frame.write.format("noop").mode("overwrite").save()


def file_name(path: str) -> str:
    """The file name at the end of ``path`` (the key that matches rows across sides)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


# -- the sparktf stages ------------------------------------------------------------------------


def decode_setting(args: argparse.Namespace) -> tuple[str, dict[str, Any]] | None:
    """The scaled-decode Param to switch and its values ``{"on": ..., "off": ...}``, or None when
    the transformer has no such Param or ``--decode default``."""
    from sparktf import TFGraphTransformer

    if args.decode == "default":
        return None
    probe = TFGraphTransformer()
    names = [args.decode_param] if args.decode_param else list(DECODE_PARAMS)
    found = next((n for n in names if probe.hasParam(n)), None)
    if found is None:
        print(
            f"note: TFGraphTransformer has no Param {' or '.join(names)}; (c) runs with its "
            "default decoding only"
        )
        return None
    on, off = (json.loads(v) for v in args.decode_values.split(",", 1))
    return found, {"on": on, "off": off}


def transformer_stage(
    files: photos.ModelFiles, batch: int, param: str | None = None, value: Any = None
) -> Any:
    """(c): the transformer on the .keras file, scores and top-5 labels, ``param`` set."""
    from sparktf import TFGraphTransformer

    stage = TFGraphTransformer(
        modelPath=files.keras,
        inputCol="content",
        outputCol="scores",
        labelsPath=files.labels,
        topK=5,
        imageScaling=files.scaling,
        batchSize=batch,
    )
    if param is not None:
        stage.set(stage.getParam(param), value)
    return stage


def graph_stage(files: photos.ModelFiles, batch: int) -> Any:
    """(c) on the frozen GraphDef: one encoded JPEG per call, decoded in the graph."""
    from sparktf import TFGraphTransformer

    return TFGraphTransformer(
        modelPath=files.graph,
        inputMapping={"content": f"{photos.INPUT_NAME}:0"},
        outputMapping={files.output: "scores"},
        labelsPath=files.labels,
        topK=5,
        batchSize=batch,
    )


def read_jpegs(spark: Any, folder: str) -> Any:
    return spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(folder)


# -- the other Spark sides -----------------------------------------------------------------------


def recipe_frame(images: Any, files: photos.ModelFiles, batch: int) -> Any:
    """(b): Pillow decode + resize in a pandas UDF, then predict_batch_udf with the Keras model."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    side, path = files.side, files.keras
    factor, shift = {"signed": (1 / 127.5, -1.0), "unit": (1 / 255, 0.0)}.get(
        files.scaling, (1.0, 0.0)
    )

    @pandas_udf(T.ArrayType(T.FloatType()))
    def decode(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        import io

        from PIL import Image

        def pixels(data: bytes) -> np.ndarray:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            image = image.resize((side, side), Image.Resampling.BILINEAR)
            values = np.asarray(image, np.float32) * np.float32(factor) + np.float32(shift)
            return values.ravel()

        for series in batches:
            yield pd.Series([pixels(data) for data in series])

    def make_predict_fn():
        import keras

        model = keras.models.load_model(path)

        def predict(inputs: np.ndarray) -> np.ndarray:
            return model.predict_on_batch(inputs)

        return predict

    classify = predict_batch_udf(
        make_predict_fn,
        return_type=T.ArrayType(T.FloatType()),
        batch_size=batch,
        input_tensor_shapes=[[side, side, 3]],
    )
    return images.select("path", classify(decode(F.col("content"))).alias("scores"))


def _constant_udf(width: int) -> Any:
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(T.ArrayType(T.FloatType()))
    def constant(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        scores = np.zeros(width, np.float32)
        for series in batches:
            yield pd.Series([scores] * len(series))

    return constant


def floor_frame(images: Any, column: str = "content") -> Any:
    """(d): the bytes (or, for ``column="path"``, only the paths) to a pandas UDF and a
    constant scores array back."""
    from pyspark.sql import functions as F

    return images.select("path", _constant_udf(photos.CLASSES)(F.col(column)).alias("scores"))


class KeepWorkers:
    """While the driver works alone (a single-process side, a subprocess), run a tiny pandas-UDF
    job every ``every`` seconds so that Spark does not stop the idle Python workers (it does
    after a minute) and the next Spark side finds them warm."""

    def __init__(self, spark: Any, every: float = 15.0) -> None:
        from pyspark.sql import functions as F

        self._frame = spark.range(0, 2, 1, 2).select(_constant_udf(1)(F.col("id")))
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            write_noop(self._frame)

    def __enter__(self) -> KeepWorkers:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def collect_scores(frame: Any, names: list[str]) -> np.ndarray:
    """The ``scores`` of ``frame`` as a matrix in the order of the file ``names``."""
    by_name = {file_name(r["path"]): r["scores"] for r in frame.select("path", "scores").collect()}
    return np.asarray([by_name[n] for n in names], dtype=np.float32)
