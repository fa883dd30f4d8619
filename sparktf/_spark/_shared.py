"""Shipping a read-only value to every worker once."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import threading
from collections import OrderedDict
from typing import Any

from sparktf._spark._session import is_connect, session_key

# Values loaded from shared files in this Python process, newest last (a worker keeps few).
_LOADED: OrderedDict[str, Any] = OrderedDict()
_LOADED_LIMIT = 2
_loaded_lock = threading.Lock()
# Artifact names already added, per Connect session id.
_ADDED: dict[str, set[str]] = {}


class Shared:
    """A read-only value every task can read (``.value``), shipped once per worker."""

    def __init__(self, broadcast=None, name: str | None = None, value: Any = None) -> None:
        self._broadcast = broadcast
        self._name = name
        self._value = value  # the driver's own copy (Connect); not pickled into tasks

    def __getstate__(self) -> dict[str, Any]:
        return {"_broadcast": self._broadcast, "_name": self._name, "_value": None}

    @property
    def value(self) -> Any:
        if self._broadcast is not None:
            return self._broadcast.value
        if self._value is not None:
            return self._value
        return _load_shared(self._name)

    def release(self) -> None:
        """Free the value for good, once no task will read it again: a broadcast is destroyed
        (its blocks on the executors and on the driver, and the driver's file of it). Over
        Connect the artifact stays with the session (a client cannot remove one; a worker
        keeps at most ``_LOADED_LIMIT`` loaded) and only the driver's copy is dropped."""
        if self._broadcast is not None:
            with contextlib.suppress(Exception):  # the context may already be stopped
                self._broadcast.destroy()
        self._value = None

    def evict(self) -> None:
        """Free the executors' copies of a value that a planned DataFrame may still read: the
        driver keeps its copy, from which a later task fetches it again."""
        if self._broadcast is not None:
            with contextlib.suppress(Exception):
                self._broadcast.unpersist()


class LastShared:
    """The last value a stage shared, reused while the session and the value's key stay the
    same: a stage keeps one, so transforming again ships nothing new (one path for the
    classifier's model and the transformer's)."""

    def __init__(self) -> None:
        self._last: tuple[str, str, Shared] | None = None

    def get(self, spark, key: str, value: Any) -> Shared:
        """The shared ``value`` known by ``key`` in ``spark``'s session, shipped if it is new."""
        session = session_key(spark)
        if self._last is None or self._last[:2] != (session, key):
            replaced, self._last = self._last, (session, key, share(spark, value))
            if replaced is not None:
                # a DataFrame transformed before may still run with it: not destroyed
                replaced[2].evict()
        return self._last[2]


def _load_shared(name: str) -> Any:
    with _loaded_lock:
        if name in _LOADED:
            _LOADED.move_to_end(name)
            return _LOADED[name]
        from pyspark import SparkFiles

        with open(SparkFiles.get(name), "rb") as handle:
            value = pickle.load(handle)
        _LOADED[name] = value
        while len(_LOADED) > _LOADED_LIMIT:
            _LOADED.popitem(last=False)
        return value


def share(spark, value: Any) -> Shared:
    """Ship ``value`` to every worker once; tasks read it as ``shared.value``."""
    if not is_connect(spark):
        return Shared(broadcast=spark.sparkContext.broadcast(value))
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"sparktf-{hashlib.sha256(payload).hexdigest()[:40]}.pkl"
    added = _ADDED.setdefault(str(spark.session_id), set())
    if name not in added:
        folder = tempfile.mkdtemp(prefix="sparktf-share-")
        path = os.path.join(folder, name)
        try:
            with open(path, "wb") as handle:
                handle.write(payload)
            spark.addArtifacts(path, file=True)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
                os.rmdir(folder)
        added.add(name)
    return Shared(name=name, value=value)
