"""A local Spark Connect server (``get_spark(remote="local[N]")``) on a port of its own.

pyspark starts a local server on ``spark.connect.grpc.binding.port`` (15002 unless set) and points
its client at ``sc://localhost``, which is port 15002 whatever port the server took. Two processes
on one machine that each start a local server would meet there: the second server cannot bind
15002, and its client reaches the first process's server. So :func:`~sparktf.session.get_spark`
starts each local server on the port ``conf`` names, or else on a free one, and points the
client at that port while it connects (:func:`client_port`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: The Spark setting of the local Connect server's port.
PORT_SETTING = "spark.connect.grpc.binding.port"


def free_port() -> int:
    """A TCP port nothing listens on on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_server_conf(conf: Mapping[str, str] | None) -> tuple[dict[str, str], int]:
    """``conf`` with the server's port set (the user's, or a free port), and that port."""
    settings = dict(conf or {})
    port = int(settings.get(PORT_SETTING) or free_port())
    settings[PORT_SETTING] = str(port)
    return settings, port


@contextmanager
def client_port(port: int | None) -> Iterator[None]:
    """In this block, a Connect URL without a port (pyspark's ``sc://localhost`` for a local
    server) means ``port``; ``None`` changes nothing."""
    if port is None:
        yield
        return
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    original = DefaultChannelBuilder.__dict__["default_port"]
    DefaultChannelBuilder.default_port = staticmethod(lambda: port)
    try:
        yield
    finally:
        DefaultChannelBuilder.default_port = original
