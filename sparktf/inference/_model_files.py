"""Reading a TFGraphTransformer's model on the driver: its bytes, or the identity of a path.

A model given by ``modelPath`` is either read on the driver and shipped to the workers
(``broadcastModel=True``), or read by every worker from the path itself; then
:func:`fingerprint` identifies the path's current content, so a changed model is never served
from a worker's cache.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

__all__ = ["detect", "fingerprint", "local_files", "read_model"]


def local_files(directory: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, _, names in os.walk(directory):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                files[os.path.relpath(full, directory).replace(os.sep, "/")] = handle.read()
    return files


def detect(path: str, is_dir: bool) -> str:
    from sparktf.inference._formats import detect_format

    return detect_format(path, is_dir)


def read_model(spark: Any, path: str) -> tuple[bytes, bool]:
    """Read a model file, or a SavedModel directory as a zip, on the driver."""
    from sparktf._spark import list_files, path_status, read_bytes
    from sparktf.inference._formats import zip_files

    status = path_status(spark, path)
    if status is None:
        raise FileNotFoundError(
            f"TFGraphTransformer cannot read its model: no file or directory at modelPath {path!r}."
        )
    if status == "dir":
        names = list_files(spark, path)
        files = {name: read_bytes(spark, path.rstrip("/") + "/" + name) for name in names}
        return zip_files(files), True
    return read_bytes(spark, path), False


# A model file read by the workers themselves is identified by its size, modification time and a
# digest of its content: the whole file up to _DIGEST_WHOLE bytes, else its first and last
# _DIGEST_SAMPLE bytes. Modification times alone are not enough: TensorFlow's file system reports
# local ones in whole seconds, and a model saved twice within a second keeps its size.
_DIGEST_WHOLE = 64 << 20
_DIGEST_SAMPLE = 1 << 20


class _LocalFiles:
    """The few ``tf.io.gfile`` calls :func:`fingerprint` makes, for this machine's disk (so that
    fingerprinting a local model does not import TensorFlow on the driver)."""

    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    walk = staticmethod(os.walk)

    @staticmethod
    def GFile(path: str, mode: str):  # the name of gfile.GFile
        return open(path, mode)


def _local(path: str) -> str | None:
    """The local path of ``path`` (plain, or a ``file:`` URI), else None (another filesystem)."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return None if "://" in path else path


def _file_identity(gfile: Any, path: str) -> str:
    if gfile is _LocalFiles:  # nanosecond modification times
        stat = os.stat(path)
        length, mtime = stat.st_size, stat.st_mtime_ns
    else:
        stat = gfile.stat(path)
        length, mtime = stat.length, stat.mtime_nsec
    digest = hashlib.sha256()
    with gfile.GFile(path, "rb") as handle:
        if length <= _DIGEST_WHOLE:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_DIGEST_SAMPLE))
            handle.seek(length - _DIGEST_SAMPLE)
            digest.update(handle.read())
    return f"{length}|{mtime}|{digest.hexdigest()}"


def fingerprint(path: str) -> tuple[str, bool]:
    """Identity of a model path every worker reads: names, sizes, modification times and content
    digests of its files. Local paths are read directly, others through TensorFlow's
    filesystems (the ones the workers read them with)."""
    local = _local(path)
    if local is not None:
        gfile: Any = _LocalFiles
        target = local
    else:
        from sparktf._tf import configure_tensorflow

        gfile = configure_tensorflow().io.gfile
        target = path
    if not gfile.exists(target):
        raise FileNotFoundError(
            f"TFGraphTransformer cannot read its model: no file or directory at modelPath {path!r}."
        )
    if not gfile.isdir(target):
        return f"{path}|{_file_identity(gfile, target)}", False
    parts = [path]
    for root, _, names in sorted(gfile.walk(target)):
        for name in sorted(names):
            full = os.path.join(root, name)
            parts.append(f"{os.path.relpath(full, target)}|{_file_identity(gfile, full)}")
    return "\n".join(parts), True
