"""``sparktf`` run in-process closes the thread pools its command made, and only those."""

from __future__ import annotations

import threading
from multiprocessing.pool import ThreadPool

import pytest


def test_the_command_closes_its_own_pools_and_leaves_other_threads_pools(monkeypatch):
    from sparktf import cli

    outside: list[ThreadPool] = []
    made = threading.Event()
    done = threading.Event()

    def validator_in_another_thread():  # as a validator running beside the command
        outside.append(ThreadPool(2))
        made.set()
        done.wait(30)

    other = threading.Thread(target=validator_in_another_thread, daemon=True)
    other.start()
    assert made.wait(30)
    before = ThreadPool(1)  # made by this thread before the command ran
    mine: list[ThreadPool] = []

    def run(args, console):  # a command whose validator leaves its pool open, as pyspark's do
        mine.append(ThreadPool(2))
        assert mine[0].apply(lambda: 2) == 2
        return 0

    monkeypatch.setattr(cli.demo, "run", run)
    try:
        assert cli.main(["demo"]) == 0
        # the command's pool is closed ...
        with pytest.raises(ValueError, match="Pool not running"):
            mine[0].apply(lambda: 1)
        # ... the other thread's and the earlier one still work
        assert outside[0].apply(lambda: 3) == 3
        assert before.apply(lambda: 4) == 4
    finally:
        done.set()
        for pool in (*outside, before, *mine):
            pool.terminate()
