"""Reading a model's output rows in a known order, for the tests that compare them.

``df.orderBy(...)`` on a transformed DataFrame runs the model twice: a range sort first runs a
sampling job over its input, and that input includes the model's UDF. The tests collect the rows
once and sort them here instead.
"""

from __future__ import annotations


def rows_by(df, *keys: str) -> list:
    """The rows of ``df`` (one job), sorted in Python by the columns ``keys``, which should
    identify a row (an id, a path) so that the order is fully determined."""
    if not keys:
        raise ValueError("rows_by needs at least one column to sort by")
    return sorted(df.collect(), key=lambda row: tuple(row[key] for key in keys))
