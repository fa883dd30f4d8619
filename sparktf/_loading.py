"""Loading models on workers, once per Python worker.

A pandas UDF captures only bytes (through a broadcast) or a path, never a live TensorFlow object.
On the worker, :data:`MODEL_CACHE` turns them into a loaded model the first time a key is seen and
hands the same object to every later batch and task in that process. The key is the model's
identity (a content hash computed on the driver), so a changed model is never served stale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["MODEL_CACHE", "ModelCache", "load_keras_bytes", "model_key"]


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
                self._items.popitem(last=False)
            return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MODEL_CACHE = ModelCache(capacity=int(os.environ.get("SPARKTF_MODEL_CACHE_SIZE", "4")))


def model_key(data: bytes, *extra: str) -> str:
    """Identity of a model: a SHA-256 of its bytes (and of any extra strings)."""
    digest = hashlib.sha256(data)
    for item in extra:
        digest.update(b"\0" + item.encode())
    return digest.hexdigest()


def load_keras_bytes(data: bytes, suffix: str = ".keras"):
    """Load a Keras model from the bytes of a ``.keras`` (or ``.h5``) file."""
    from sparktf._tf import configure_tensorflow

    configure_tensorflow()
    import keras

    fd, path = tempfile.mkstemp(suffix=suffix, prefix="sparktf-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return keras.saving.load_model(path, compile=False)
    finally:
        os.remove(path)


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
