"""Files under any path Spark can reach (local, HDFS, S3, ...), in either mode."""

from __future__ import annotations

from sparktf._spark._session import is_connect


def _hadoop_path(spark, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, jpath


def _missing(exc: Exception) -> bool:
    text = str(exc)
    return "PATH_NOT_FOUND" in text or "does not exist" in text


def _binary_files(spark, path: str):
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(path)
        .select("path", "length")
    )


def _uri_path(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path.rstrip("/") if "://" in uri or uri.startswith("file:") else uri


def write_bytes(spark, path: str, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` on any filesystem Spark can write to.

    Over Connect the bytes are written as a one-row Parquet folder at ``path`` (column
    ``content``), which :func:`read_bytes` reads like a file in either mode.
    """
    if is_connect(spark):
        frame = spark.createDataFrame([(bytearray(data),)], "content binary").coalesce(1)
        frame.write.mode("overwrite" if overwrite else "errorifexists").parquet(path)
        return
    fs, jpath = _hadoop_path(spark, path)
    stream = fs.create(jpath, overwrite)
    try:
        chunk = 16 * 1024 * 1024
        for start in range(0, len(data), chunk):
            stream.write(bytearray(data[start : start + chunk]))
    finally:
        stream.close()


def read_bytes(spark, path: str) -> bytes:
    """Read the whole file at ``path`` (or a folder written by :func:`write_bytes` over
    Connect) from any filesystem Spark can read."""
    status = path_status(spark, path)
    if status is None:
        raise FileNotFoundError(f"No such file: {path}")
    if status == "dir":
        rows = spark.read.parquet(path).select("content").collect()
        if len(rows) != 1:
            raise IsADirectoryError(f"{path} is a folder, not a file sparktf wrote")
        return bytes(rows[0][0])
    if not is_connect(spark):
        local = _local_path(*_hadoop_path(spark, path))
        if local is not None:
            with open(local, "rb") as handle:
                return handle.read()
    # Through a Spark job: py4j would turn a byte[] into Python one byte at a time (about 1 s
    # per 12 MB), while collected rows arrive as whole buffers.
    rows = spark.read.format("binaryFile").load(path).select("content").collect()
    if len(rows) != 1:
        raise FileNotFoundError(
            f"Spark lists no readable file at {path} (names starting with '_' or '.' are hidden "
            "from Spark's file sources)"
        )
    return bytes(rows[0][0])


def _local_path(fs, jpath) -> str | None:
    """The path on this machine's disk of a Hadoop path on the local filesystem, else None."""
    uri = fs.makeQualified(jpath).toUri()
    if uri.getScheme() != "file":
        return None
    return uri.getPath()


def path_status(spark, path: str) -> str | None:
    """``"file"``, ``"dir"`` or None (missing) for ``path`` on any filesystem Spark can read."""
    if is_connect(spark):
        try:
            rows = _binary_files(spark, path).limit(2).collect()
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        single = len(rows) == 1 and _uri_path(rows[0]["path"]) == _uri_path(path).rstrip("/")
        return "file" if single else "dir"
    fs, jpath = _hadoop_path(spark, path)
    if not fs.exists(jpath):
        return None
    return "dir" if fs.getFileStatus(jpath).isDirectory() else "file"


def list_files(spark, path: str) -> list[str]:
    """Paths, relative to the directory ``path`` and ``/``-separated, of all files below it."""
    if is_connect(spark):
        root = _uri_path(path).rstrip("/")
        found = [_uri_path(row["path"]) for row in _binary_files(spark, path).collect()]
        return sorted(name[len(root) :].lstrip("/") for name in found)
    fs, jpath = _hadoop_path(spark, path)
    root = fs.getFileStatus(jpath).getPath().toUri().getPath().rstrip("/")
    found = fs.listFiles(jpath, True)
    names = []
    while found.hasNext():
        full = found.next().getPath().toUri().getPath()
        names.append(full[len(root) :].lstrip("/"))
    return sorted(names)


def delete_path(spark, path: str) -> None:
    """Remove the file or folder ``path`` (recursively) on any filesystem Spark can write to."""
    if is_connect(spark):
        from pyspark.ml.util import invoke_helper_attr

        invoke_helper_attr("handleOverwrite", path, True)
        return
    fs, jpath = _hadoop_path(spark, path)
    fs.delete(jpath, True)
