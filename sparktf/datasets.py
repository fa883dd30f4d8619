"""Datasets as DataFrames ready for TFClassifier.

* :func:`load_digits` - scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes):
  the embedded default, needs no download.
* :func:`load_mnist` - the standard MNIST IDX files, for users who have them.

Both return DataFrames with a ``features`` ml Vector column (pixel values), a ``label`` double
column and an ``image_id`` column.

* :func:`load_image_folder` - a folder of labelled images, one subfolder per class (Keras'
  ``image_dataset_from_directory`` convention), as image paths (or bytes) and a ``label`` whose
  column metadata holds the class names (:func:`class_names`).
"""

from __future__ import annotations

import gzip
import os
import posixpath
import struct
import threading
import zlib

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "arrays_to_dataframe",
    "class_names",
    "load_digits",
    "load_image_folder",
    "load_mnist",
    "read_idx",
]


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


# -- folders of labelled images ------------------------------------------------------------------

#: File name endings :func:`load_image_folder` reads as images (any case): Keras'
#: ``image_dataset_from_directory`` formats, and TIFF and WebP, which the transformer decodes too.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp")


def load_image_folder(
    spark,
    path: str,
    content: bool = False,
    extensions=IMAGE_EXTENSIONS,
    labels_file: str | None = None,
):
    """A folder of labelled images, one subfolder per class, as a DataFrame.

    The classes are the subfolders of ``path``, in sorted order; a row's ``label`` (double) is
    its class's index in that order, as Keras' ``image_dataset_from_directory`` numbers them.
    Every image file below a class folder (in nested folders too) is a row; files whose names
    do not end in one of ``extensions`` (any case), files directly in ``path`` and hidden files
    (names starting with ``.`` or ``_``) are ignored. The columns are ``path`` (the file's URI,
    as ``spark.read.format("binaryFile")`` gives it, which the transformer and the classifier
    read as paths of image files) and, with ``content``, the encoded bytes ``content``; then
    ``label``, whose column metadata holds the class names as Spark's ``StringIndexer`` writes
    them (read them with :func:`class_names`). With ``labels_file``, the class names are also
    written there, one per line, for ``TFGraphTransformer(labelsPath=...)``.

    The files are listed by Spark (``binaryFile`` with ``recursiveFileLookup``), so ``path``
    may be on any filesystem Spark reads. Raises ``FileNotFoundError`` for a missing folder and
    ``ValueError`` for a file, a folder without subfolders, or a class folder without images
    (empty folders are seen on a local filesystem only; elsewhere a folder exists for Spark
    through its files).
    """
    from pyspark.sql import functions as F

    from sparktf._spark import path_status, write_bytes

    status = path_status(spark, path)
    if status is None:
        raise FileNotFoundError(f"load_image_folder: no folder at {path!r}.")
    if status != "dir":
        raise ValueError(
            f"load_image_folder needs a folder with one subfolder per class. Got the file "
            f"{path!r} instead."
        )
    files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(path)
    files = files.select("path", *(["content"] if content else []))
    relative = _relative_path(F.col("path"), path)
    endings = "|".join(e.lower().lstrip(".") for e in extensions)
    files = files.withColumns(
        {
            "_class": F.substring_index(relative, "/", 1),
            "_nested": relative.contains("/"),
            "_image": F.lower(F.col("path")).rlike(rf"\.({endings})$"),
        }
    ).filter(F.col("_nested").isNull() | F.col("_nested"))
    classes = _classes(spark, files.select("_class", "_image"), path)
    index = F.array_position(F.array(*[F.lit(c) for c in classes]), F.col("_class")) - 1
    metadata = {"ml_attr": {"type": "nominal", "name": "label", "vals": classes}}
    if labels_file:
        write_bytes(spark, labels_file, ("\n".join(classes) + "\n").encode("utf-8"))
    return files.filter("_image").select(
        "path",
        *(["content"] if content else []),
        index.cast("double").alias("label", metadata=metadata),
    )


def _relative_path(column, root: str):
    """The ``/``-separated path of a file below ``root``, from its URI (``column``, as Spark
    lists it: qualified, percent-encoded)."""
    from pyspark.sql import functions as F

    # the URI's path, decoded ('+' is a plus sign in a path, not a space as url_decode takes it)
    path = F.url_decode(
        F.replace(
            F.regexp_replace(column, r"^[a-zA-Z][\w+.-]*:(//[^/]*)?", ""), F.lit("+"), F.lit("%2B")
        )
    )
    base = posixpath.normpath(_uri_path(root))  # as Hadoop's Path normalizes it
    marker = f"{base}/" if base.startswith("/") else f"/{base}/"
    at = F.locate(marker, path)
    return F.when(at > 0, F.substring(path, at + len(marker), 1 << 30))  # else null


def _classes(spark, files, path: str) -> list[str]:
    """The sorted class names of ``files`` (``_class``, ``_image``); each must hold images."""
    from pyspark.sql import functions as F

    counts = files.groupBy("_class").agg(F.sum(F.col("_image").cast("int")).alias("n")).collect()
    found = {row["_class"]: row["n"] for row in counts}
    if None in found:
        raise ValueError(
            f"load_image_folder cannot tell the class folders of {path!r}: Spark lists its files "
            "under another name (a link or '..' in the path?); give the folder's own path."
        )
    found.update({name: 0 for name in _local_subfolders(path) if name not in found})
    if not found:
        raise ValueError(
            f"load_image_folder needs one subfolder per class in {path!r}; it has no subfolder "
            "holding files."
        )
    empty = sorted(name for name, n in found.items() if not n)
    if empty:
        listed = ", ".join(e.lower().lstrip(".") for e in IMAGE_EXTENSIONS)
        raise ValueError(
            f"load_image_folder: the class folder(s) {empty} of {path!r} hold no image files "
            f"(names ending in one of the extensions asked for, by default {listed}); remove "
            "them or add images."
        )
    return sorted(found)


def _local_subfolders(path: str) -> list[str]:
    """The visible subfolders of ``path`` when it is a folder on this machine (where empty
    folders can be seen), else none."""
    local = _uri_path(path) if path.startswith("file:") else path
    if "://" in local or not os.path.isdir(local):
        return []
    return [
        entry.name
        for entry in os.scandir(local)
        if entry.is_dir() and not entry.name.startswith((".", "_"))
    ]


def _uri_path(path: str) -> str:
    """The path part of a URI (``file:/a/b``, ``hdfs://host/a/b``: ``/a/b``); a plain path as
    it is."""
    from urllib.parse import unquote, urlparse

    if "://" in path or path.startswith("file:"):
        return unquote(urlparse(path).path)
    return path


def class_names(df, label_col: str = "label") -> list[str]:
    """The class names in the column metadata of ``label_col`` (as :func:`load_image_folder`
    and Spark's ``StringIndexer`` write them), in label order."""
    attr = df.schema[label_col].metadata.get("ml_attr", {})
    names = attr.get("vals")
    if not names:
        raise ValueError(
            f"Column {label_col!r} has no class names in its metadata (ml_attr vals). Got "
            f"metadata {df.schema[label_col].metadata!r} instead."
        )
    return list(names)
