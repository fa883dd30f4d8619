"""How the benchmarks time one run of something."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(action: Callable[[], Any]) -> float:
    """Wall seconds of one call of ``action``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
