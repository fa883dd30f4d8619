"""Training data larger than a broadcast: staged once as Parquet, streamed by every task.

Driver side (:func:`staged_training_data`): the selected columns are checked by aggregation jobs
(the rows never reach the driver) and written once as Parquet under a staging folder: on a local
master a temporary folder by default, on a cluster a folder every executor can read (HDFS, S3, a
shared mount) named by the ``stagingDir`` Param or the Spark conf ``spark.sparktf.stagingDir``.
The folder is removed when the fit ends, whether it succeeded, failed or was interrupted.

Worker side (:mod:`sparktf.training._streaming`): each training task streams the files through a
``tf.data`` pipeline, holding at most a bounded shuffle buffer in memory.

Held-out rows: with ``validationIndicatorCol`` the column marks them as usual; with
``validationSplit`` a uniform random number drawn once per row when the data is staged decides
(rows below the fraction are held out), so the split does not depend on the order tasks read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

from sparktf.training._plans import TrainingData

logger = logging.getLogger("sparktf")

__all__ = ["STAGING_CONF", "resolve_staging_dir", "staged_training_data"]

STAGING_CONF = "spark.sparktf.stagingDir"
# Staged files are about this size.
_FILE_BYTES = 64 * 1024 * 1024


def resolve_staging_dir(spark, stage: str, staging_dir: str) -> tuple[str, bool]:
    """The staging root and whether it is a temporary folder sparktf made (and removes)."""
    root = staging_dir or spark.conf.get(STAGING_CONF, "") or ""
    if root:
        return root, False
    master = spark.conf.get("spark.master", "")
    if master.startswith("local"):
        local_dirs = spark.conf.get("spark.local.dir", "") or ""
        parent = local_dirs.split(",")[0].strip() or None
        if parent:
            os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(prefix="sparktf-staging-", dir=parent), True
    raise ValueError(
        f"{stage} must stage its training data (it is larger than maxBroadcastBytes), but no "
        f"staging folder is set for the master {master!r}. Set the 'stagingDir' param, or the "
        f"Spark conf {STAGING_CONF}, to a folder every executor can read (HDFS, S3 or a shared "
        "mount), or raise maxBroadcastBytes to collect and broadcast the data instead."
    )


def _is_local(path: str) -> bool:
    """A path without a scheme, or a file: URI, is a local (or shared-mount) path."""
    return "://" not in path or path.startswith("file:")


def _local(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def _spark_uri(path: str) -> str:
    """The URI Spark writes to: local paths as file: URIs, whatever fs.defaultFS says."""
    return "file://" + os.path.abspath(_local(path)) if _is_local(path) else path


def _arrow_uri(path: str) -> str:
    """The URI pyarrow reads: Hadoop's s3a:// and s3n:// are pyarrow's s3://."""
    for prefix in ("s3a://", "s3n://"):
        if path.startswith(prefix):
            return "s3://" + path[len(prefix) :]
    return path


def _delete(spark, path: str) -> None:
    if _is_local(path):
        shutil.rmtree(_local(path), ignore_errors=True)
        return
    from sparktf._spark import delete_path

    delete_path(spark, path)


@contextlib.contextmanager
def staged_training_data(spec, selected, summary) -> Iterator[TrainingData]:
    """Stage the checked columns x, y[, v] as Parquet; yield the dict the tasks read.

    The rows are dealt round-robin into files of about 64 MiB and put in a random order within
    each file, so that a task reading a few files at a time sees every class, however the input
    was ordered. With ``validationSplit`` a uniform number ``r`` drawn per row (by ``seed``)
    decides which rows are held out.
    """
    from pyspark.sql import functions as F

    spark = selected.sparkSession
    root, temporary = resolve_staging_dir(spark, spec.stage, spec.staging_dir)
    path = root if temporary else root.rstrip("/") + f"/sparktf-{uuid.uuid4().hex[:12]}"
    data_path = _spark_uri(path.rstrip("/") + "/data")
    files = max(2, int(spec.workers), -(-summary.float32_bytes // _FILE_BYTES))
    logger.info(
        "%s: staging %d rows x %d features (%.0f MiB as float32) in %d files under %s",
        spec.stage,
        summary.rows,
        summary.width,
        summary.float32_bytes / 2**20,
        files,
        path,
    )
    try:
        staged = selected
        if not spec.indicator:
            staged = staged.withColumn("r", F.rand(spec.seed))
        staged = staged.repartition(files).sortWithinPartitions(F.rand(spec.seed + 1))
        staged.write.mode("overwrite").parquet(data_path)
        written = spark.read.parquet(data_path).count()
        if written != summary.rows:
            raise ValueError(
                f"{spec.stage}: the DataFrame gave {summary.rows} rows when checked and "
                f"{written} when staged; fit a deterministic DataFrame (cache or checkpoint it)."
            )
        yield TrainingData(
            num_features=summary.width,
            num_classes=summary.num_classes,
            staged=data_path,
            rows=summary.rows,
            has_indicator=bool(spec.indicator),
        )
    finally:
        _delete(spark, path)
