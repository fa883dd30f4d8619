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
import zlib

import numpy as np

__all__ = ["arrays_to_dataframe", "load_digits", "load_mnist", "read_idx"]


def arrays_to_dataframe(spark, x: np.ndarray, y: np.ndarray | None = None, num_partitions=None):
    """A DataFrame with ``image_id``, ``features`` (ml Vector) and ``label`` (double) columns."""
    import pandas as pd
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    pdf = pd.DataFrame({"image_id": np.arange(len(x), dtype=np.int64), "features": list(x)})
    if y is not None:
        pdf["label"] = np.asarray(y, dtype=np.float64)
    df = spark.createDataFrame(pdf)
    if num_partitions:
        df = df.repartition(num_partitions)
    return df.withColumn("features", array_to_vector(F.col("features")))


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
