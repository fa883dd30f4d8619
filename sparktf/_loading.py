"""Loading models on workers, once per Python worker.

A pandas UDF captures only bytes (through a broadcast) or a path, never a live TensorFlow object.
On the worker, :data:`MODEL_CACHE` turns them into a loaded model the first time a key is seen and
hands the same object to every later batch and task in that process. The key is the model's
identity (a content hash computed on the driver), so a changed model is never served stale.

A model evicted from the cache (or cleared) is closed: a SavedModel unpacked from bytes removes
its temporary folder then. Python workers leave through ``os._exit``, so nothing at exit can be
relied on; each folder is named after the process that made it (its PID and a tag of its host),
and the next process that unpacks a model removes the folders of processes that are gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sparktf.errors import UnsafeModelError

__all__ = [
    "MODEL_CACHE",
    "UNSAFE_LOADING_ENV",
    "ModelCache",
    "UnsafeModelError",
    "load_keras_bytes",
    "load_keras_file",
    "model_key",
    "model_temp_dir",
    "remove_stale_temp_dirs",
    "unsafe_loading_allowed",
]

#: Environment variable (of the driver) that lets sparktf load models holding Python code.
UNSAFE_LOADING_ENV = "SPARKTF_UNSAFE_LOADING"


def unsafe_loading_allowed() -> bool:
    """Whether this process opted in to loading models that hold Python code:
    ``SPARKTF_UNSAFE_LOADING=1`` (or ``true``/``yes``) in its environment.

    Read on the driver and shipped with each job, so executors need no setting of their own.
    It is deliberately not a Param: Params are saved with a stage, and a stage from an untrusted
    folder must not be able to switch safe loading off for itself.
    """
    return os.environ.get(UNSAFE_LOADING_ENV, "").strip().lower() in ("1", "true", "yes")


class ModelCache:
    """A small thread-safe LRU cache of loaded models, keyed by model identity."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a loader ran in this process (for tests and diagnostics)

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        """Return the model for ``key``, calling ``loader()`` only if it is not cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = loader()
            self.loads += 1
            self._items[key] = value
            while len(self._items) > self.capacity:
                _close(self._items.popitem(last=False)[1])
            return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            while self._items:
                _close(self._items.popitem(last=False)[1])


def _close(model: Any) -> None:
    """Release what a model holds besides memory (e.g. a SavedModel's unpacked folder)."""
    close = getattr(model, "close", None)
    if callable(close):
        close()


MODEL_CACHE = ModelCache(capacity=int(os.environ.get("SPARKTF_MODEL_CACHE_SIZE", "4")))


_TEMP_PREFIX = "sparktf-savedmodel-"
_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(_TEMP_PREFIX + r"(\d+)-([0-9a-f]{8})-")


def model_temp_dir() -> str:
    """A new temporary folder for a model unpacked in this process, named after the process
    (``sparktf-savedmodel-<pid>-<host tag>-...``); stale folders are removed first."""
    remove_stale_temp_dirs()
    return tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-{_HOST_TAG}-")


def remove_stale_temp_dirs() -> list[str]:
    """Remove the model folders left in the temporary directory by processes of this host that
    are gone; return their paths."""
    parent = tempfile.gettempdir()
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match and match.group(2) == _HOST_TAG and not _alive(int(match.group(1))):
            path = os.path.join(parent, name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def model_key(data: bytes, *extra: str) -> str:
    """Identity of a model: a SHA-256 of its bytes (and of any extra strings)."""
    digest = hashlib.sha256(data)
    for item in extra:
        digest.update(b"\0" + item.encode())
    return digest.hexdigest()


def load_keras_bytes(
    data: bytes, suffix: str = ".keras", safe_mode: bool | None = None, compile: bool = False
):
    """Load a Keras model from the bytes of a ``.keras`` (or ``.h5``) file.

    ``safe_mode`` (default: True unless :func:`unsafe_loading_allowed`) is Keras's: it refuses
    ``Lambda`` layers and other stored Python code with :class:`UnsafeModelError`. ``compile``
    restores the saved loss, metrics and optimizer with its state, to train on.
    """
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="sparktf-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return load_keras_file(path, safe_mode, compile)
    finally:
        os.remove(path)


def load_keras_file(path: str, safe_mode: bool | None = None, compile: bool = False):
    """Load a Keras ``.keras``/``.h5`` file, uncompiled unless told otherwise, in safe mode
    unless told otherwise."""
    from sparktf._tf import configure_tensorflow

    configure_tensorflow()
    import keras

    safe = not unsafe_loading_allowed() if safe_mode is None else safe_mode
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=safe)
    except Exception as exc:
        text = str(exc)
        if safe and ("safe_mode" in text or "unsafe_deserialization" in text):
            raise UnsafeModelError(
                "the model holds Python code (e.g. a Lambda layer) that loading it would run, "
                "and sparktf loads models in Keras safe mode. If you trust this model, set "
                f"{UNSAFE_LOADING_ENV}=1 in the environment of the driver (Keras said: "
                f"{text.strip().splitlines()[0] if text.strip() else type(exc).__name__})"
            ) from None
        raise


def keras_to_bytes(model) -> bytes:
    """Serialize a Keras model (architecture and weights) to the bytes of a ``.keras`` file."""
    tmpdir = tempfile.mkdtemp(prefix="sparktf-")
    path = os.path.join(tmpdir, "model.keras")
    try:
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        if os.path.exists(path):
            os.remove(path)
        os.rmdir(tmpdir)
