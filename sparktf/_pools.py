"""The thread pools pyspark's validators leave open, and closing those a command made.

``CrossValidator``/``TrainValidationSplit``/``OneVsRest`` create a ``ThreadPool`` per fit and
never close it; its idle threads keep it alive until the interpreter exits, when its pipes are
already closed and its ``__del__`` prints an ``OSError`` traceback. The ``sparktf`` command
closes the pools it made (:func:`thread_pools_closed`); a program calls
:func:`close_idle_thread_pools` at its end.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
import weakref
from collections.abc import Iterator

__all__ = ["close_idle_thread_pools", "thread_pools_closed"]

# The thread that created each ThreadPool made since pools were first watched.
_CREATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_watch_lock = threading.Lock()


def close_idle_thread_pools() -> None:
    """Terminate every ``ThreadPool`` of the process (pyspark's validators leave theirs open).

    Call at the very end of a program, never while a validator runs in any thread; the
    ``sparktf`` command closes only its own pools (:func:`thread_pools_closed`).
    """
    from multiprocessing.pool import ThreadPool

    for pool in [obj for obj in gc.get_objects() if isinstance(obj, ThreadPool)]:
        pool.terminate()


def _watch_pool_creation() -> None:
    """Have every ``ThreadPool`` made from now on record the thread that made it (once)."""
    from multiprocessing.pool import ThreadPool

    with _watch_lock:
        if getattr(ThreadPool.__init__, "_sparktf_watched", False):
            return
        made = ThreadPool.__init__

        @functools.wraps(made)
        def init(self, *args, **kwargs):
            _CREATORS[self] = threading.get_ident()
            made(self, *args, **kwargs)

        init._sparktf_watched = True
        ThreadPool.__init__ = init


@contextlib.contextmanager
def thread_pools_closed() -> Iterator[None]:
    """Terminate, when the block ends, the thread pools this thread made inside it.

    Pools made before the block, or by other threads (a validator running beside the command),
    are left running.
    """
    _watch_pool_creation()
    me = threading.get_ident()
    before = weakref.WeakSet(pool for pool, thread in list(_CREATORS.items()) if thread == me)
    try:
        yield
    finally:
        for pool, thread in list(_CREATORS.items()):
            if thread == me and pool not in before:
                pool.terminate()
