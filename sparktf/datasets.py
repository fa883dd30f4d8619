"""Datasets as DataFrames ready for TFClassifier.

* :func:`load_digits` - scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes):
  the embedded default, needs no download.
* :func:`load_mnist` - the standard MNIST IDX files, for users who have them.

Both return DataFrames with a ``features`` ml Vector column (pixel values), a ``label`` double
column and an ``image_id`` column.
"""

from __future__ import annotations

import gzip
import os
import struct
import threading
import zlib

import numpy as np

__all__ = ["arrays_to_dataframe", "load_digits", "load_mnist", "read_idx"]


# Rows per local partition: each partition of a DataFrame built from driver-side arrays travels
# inside its task, so it is kept to about this many bytes of float32 features.
_PARTITION_BYTES = 4 * 1024 * 1024
_CONF_LOCK = threading.Lock()


def arrays_to_dataframe(spark, x: np.ndarray, y: np.ndarray | None = None, num_partitions=None):
    """A DataFrame with ``image_id``, ``features`` (ml Vector) and ``label`` (double) columns.

    ``x`` holds one example per row (any shape after the first axis is flattened). The data goes
    to Spark as one Arrow table of float32 arrays (float64 input is rounded to float32), with no
    Python object per row, in local partitions of about 4 MiB each; the ml Vectors are built on
    the JVM side. With ``num_partitions`` the rows are then shuffled into that many partitions.
    """
    import pyarrow as pa
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    x = np.asarray(x)
    n = len(x)
    flat = np.ascontiguousarray(x.reshape(n, int(np.prod(x.shape[1:]))), dtype=np.float32)
    width = flat.shape[1]
    rows_per_partition = max(1, min(10_000, _PARTITION_BYTES // max(1, 4 * width)))
    # One list array per partition-sized chunk: offsets stay small (int32) at any size.
    chunks = [
        pa.ListArray.from_arrays(
            pa.array(np.arange(len(part) + 1, dtype=np.int32) * width), pa.array(part.ravel())
        )
        for part in (flat[i : i + rows_per_partition] for i in range(0, n, rows_per_partition))
    ]
    columns = {
        "image_id": pa.array(np.arange(n, dtype=np.int64)),
        "features": pa.chunked_array(chunks, type=pa.list_(pa.float32())),
    }
    if y is not None:
        columns["label"] = pa.array(np.asarray(y, dtype=np.float64).reshape(-1))
    table = pa.table(columns)
    df = _create_from_arrow(spark, table, rows_per_partition)
    if num_partitions:
        df = df.repartition(num_partitions)
    return df.withColumn("features", array_to_vector(F.col("features")))


def _create_from_arrow(spark, table, rows_per_partition: int):
    """``spark.createDataFrame(table)`` with at most ``rows_per_partition`` rows per partition.

    Spark keeps a small table (below ``spark.sql.execution.arrow.localRelationThreshold``) in the
    query plan and splits it over the default parallelism; a larger one becomes one partition
    per Arrow batch of ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows. Both settings are
    narrowed for this one call (at most two partitions' worth stays in the plan) and restored,
    under a lock so that concurrent calls cannot restore each other's narrowed values. Other
    threads creating DataFrames from local data meanwhile see the narrowed values too.
    """
    narrowed = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(rows_per_partition),
        "spark.sql.execution.arrow.localRelationThreshold": str(2 * _PARTITION_BYTES),
    }
    with _CONF_LOCK:
        previous = {key: spark.conf.get(key, None) for key in narrowed}
        for key, value in narrowed.items():
            spark.conf.set(key, value)
        try:
            return spark.createDataFrame(table)
        finally:
            for key, value in previous.items():
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)


def load_digits(spark, num_partitions: int | None = None):
    """scikit-learn's handwritten digits (8x8 pixels in 0..16) as a DataFrame."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    return arrays_to_dataframe(spark, bunch.data, bunch.target, num_partitions)


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Gzip is recognized by its magic bytes, whatever the file name. The array has the shape the
    header gives and the element type it names (``uint8`` for MNIST), in native byte order.
    """
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0:
                raise ValueError(f"{path} is not an IDX file (bad magic number {header!r}).")
            if header[2] not in _IDX_TYPES:
                raise ValueError(f"{path}: unknown IDX element type 0x{header[2]:02x}.")
            ndim = header[3]
            dims = handle.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise ValueError(
                    f"{path}: truncated IDX header: {ndim} dimension sizes announced, "
                    f"{len(dims)} of {4 * ndim} bytes present."
                )
            shape = struct.unpack(f">{ndim}I", dims)
            payload = handle.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({exc}).") from None
    dtype = np.dtype(_IDX_TYPES[header[2]])
    expected = int(np.prod(shape))
    if len(payload) != expected * dtype.itemsize:
        raise ValueError(
            f"{path}: the header promises {expected} values of shape {shape} "
            f"({expected * dtype.itemsize} bytes of data), the file holds {len(payload)} bytes."
        )
    data = np.frombuffer(payload, dtype=dtype)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory: str, stem: str) -> str:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        f"MNIST file {stem}[.gz] not found in {directory!r}. Expected the standard files "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (gzipped or not)."
    )


def load_mnist(spark, directory: str, split: str = "train", num_partitions: int | None = None):
    """MNIST from its IDX files in ``directory`` (``split`` is ``"train"`` or ``"test"``).

    Pixels stay in 0..255; TFClassifier standardizes features by default.
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test'. Got {split!r} instead.")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"MNIST directory not found: {directory!r}")
    images_stem, labels_stem = _MNIST_FILES[split]
    images = read_idx(_find(directory, images_stem))
    labels = read_idx(_find(directory, labels_stem))
    if len(images) != len(labels):
        raise ValueError(
            f"MNIST {split} files disagree: {len(images)} images but {len(labels)} labels."
        )
    return arrays_to_dataframe(spark, images, labels, num_partitions)
