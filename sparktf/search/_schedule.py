"""The rungs of a successive-halving search: how many epochs each rung trains to, and how many
param maps train in it. Pure arithmetic, no Spark and no TensorFlow."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Rung", "rung_schedule"]


@dataclass(frozen=True)
class Rung:
    """One rung: the maps that reach it train up to ``epochs`` (in all, counting earlier
    rungs); ``maps`` is how many of them train in it."""

    epochs: int
    maps: int


def rung_schedule(maps: int, max_epochs: int, factor: int, min_epochs: int = 1) -> list[Rung]:
    """The rungs of a search over ``maps`` param maps with a budget of ``max_epochs``.

    Every rung keeps the best ``1/factor`` of the maps of the rung before (rounded up) and
    multiplies the epochs by ``factor``; the last rung trains to ``max_epochs``. There are as
    many rungs as halvings leave at least one map, and as the first rung keeps at least
    ``min_epochs``. ``factor=1`` is the exhaustive search: one rung, every map, every epoch.

    >>> rung_schedule(16, 12, 3)
    [Rung(epochs=1, maps=16), Rung(epochs=4, maps=6), Rung(epochs=12, maps=2)]
    >>> rung_schedule(16, 12, 3, min_epochs=2)
    [Rung(epochs=4, maps=16), Rung(epochs=12, maps=6)]
    >>> rung_schedule(4, 10, 1)
    [Rung(epochs=10, maps=4)]
    """
    if maps < 1 or max_epochs < 1 or factor < 1 or min_epochs < 1:
        raise ValueError(
            "rung_schedule needs maps, max_epochs, factor and min_epochs >= 1. Got "
            f"maps={maps}, max_epochs={max_epochs}, factor={factor}, min_epochs={min_epochs}."
        )
    if factor == 1:
        return [Rung(max_epochs, maps)]
    count = 1
    while factor**count <= maps and max_epochs // factor**count >= min_epochs:
        count += 1
    rungs: list[Rung] = []
    for i in range(count):
        epochs = max(min_epochs, round(max_epochs / factor ** (count - 1 - i)))
        kept = math.ceil(maps / factor**i)
        if rungs and epochs <= rungs[-1].epochs:
            rungs[-1] = Rung(rungs[-1].epochs, kept)
        else:
            rungs.append(Rung(epochs, kept))
    return rungs
