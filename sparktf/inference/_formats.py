"""Model formats on the driver: which format a path or bytes hold, and SavedModels as zips.

A model is a frozen TF1 ``GraphDef`` (a ``.pb`` file), a TF2 SavedModel directory or a Keras
``.keras``/``.h5`` file; a SavedModel travels as the bytes of a zip archive of its directory.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import io
import zipfile

__all__ = [
    "FORMATS",
    "detect_format",
    "detect_format_from_bytes",
    "keras_suffix",
    "unzip_files",
    "zip_files",
]

FORMATS = ("graphdef", "savedmodel", "keras")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str, is_dir: bool) -> str:
    """The model format of a path: a directory is a SavedModel, ``.keras``/``.h5`` are Keras files,
    anything else a frozen GraphDef.

    >>> detect_format("/models/inception.pb", False), detect_format("/m/net.h5", False)
    ('graphdef', 'keras')
    """
    if is_dir:
        return "savedmodel"
    lower = path.lower().rstrip("/")
    if lower.endswith((".keras", ".h5", ".hdf5")):
        return "keras"
    return "graphdef"


def detect_format_from_bytes(data: bytes) -> str:
    """The model format of in-memory model bytes (zip of a SavedModel, Keras zip or HDF5, or
    a serialized GraphDef)."""
    if data.startswith(_HDF5_MAGIC):
        return "keras"
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return "graphdef"
        if "saved_model.pb" in names or "saved_model.pbtxt" in names:
            return "savedmodel"
        return "keras"
    return "graphdef"


def keras_suffix(data: bytes) -> str:
    """File suffix Keras needs to load model bytes: ``.h5`` for HDF5, else ``.keras``."""
    return ".h5" if data.startswith(_HDF5_MAGIC) else ".keras"


def zip_files(files: dict[str, bytes]) -> bytes:
    """A zip archive (stored, not compressed) of ``{relative path: bytes}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()


def unzip_files(data: bytes) -> dict[str, bytes]:
    """The ``{relative path: bytes}`` held by a zip archive made by :func:`zip_files`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
