"""sparktf.session: driver memory sized from the machine for local sessions."""

from __future__ import annotations

import pytest

from sparktf import session
from sparktf.session import auto_driver_memory

GIB = 1024**3


@pytest.mark.parametrize(
    ("total", "expected"),
    [(24 * GIB, "8g"), (64 * GIB, "8g"), (6 * GIB, "3g"), (1 * GIB, "1g"), (None, None)],
)
def test_auto_driver_memory_is_half_the_ram_between_1_and_8_gib(total, expected):
    assert auto_driver_memory(total) == expected


@pytest.mark.parametrize(
    ("env", "conf"),
    [
        ({}, {"spark.driver.memory": "2g"}),
        ({"SPARK_DRIVER_MEMORY": "2g"}, None),
        ({"PYSPARK_SUBMIT_ARGS": "--driver-memory 2g pyspark-shell"}, None),
        ({"PYSPARK_SUBMIT_ARGS": "--conf spark.driver.memory=2g pyspark-shell"}, None),
    ],
)
def test_a_driver_memory_set_by_the_user_wins(monkeypatch, tmp_path, env, conf):
    for key in ("SPARK_DRIVER_MEMORY", "PYSPARK_SUBMIT_ARGS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert not session._driver_memory_set_by_user(None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert session._driver_memory_set_by_user(conf)


def test_spark_defaults_conf_counts_as_set_by_the_user(monkeypatch, tmp_path):
    for key in ("SPARK_DRIVER_MEMORY", "PYSPARK_SUBMIT_ARGS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    (tmp_path / "spark-defaults.conf").write_text("spark.executor.memory 2g\n")
    assert not session._driver_memory_set_by_user(None)
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.memory   3g\n")
    assert session._driver_memory_set_by_user(None)


def test_the_suite_session_got_a_sized_driver(spark):
    """conftest's get_spark(master='local[2]') set no memory: the heap follows the machine."""
    if session._driver_memory_set_by_user(None):
        pytest.skip("this environment sets spark.driver.memory itself, which rightly wins")
    expected = auto_driver_memory(session.physical_memory_bytes())
    assert spark.sparkContext.getConf().get("spark.driver.memory") == expected


def test_a_connect_only_pyspark_names_the_way_out(monkeypatch, tmp_path):
    """Without Spark's jars (pyspark-client), get_spark explains how to connect instead."""
    import pyspark

    from sparktf import session

    fake = tmp_path / "pyspark"
    fake.mkdir()
    monkeypatch.setattr(pyspark, "__file__", str(fake / "__init__.py"))
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    with pytest.raises(RuntimeError, match=r"Spark Connect client only.*remote='sc://"):
        session.get_spark(master="local[1]")


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[2]",
        "local[*]",
        "local[4,3]",
        "local-cluster[2,1,1024]",
        "yarn",
        "k8s://https://k8s-api:6443",
    ],
)
def test_master_urls_spark_understands_pass(master):
    from sparktf.session import check_master

    check_master(master)


@pytest.mark.parametrize("master", ["local[two]", "local[2", "spark//host:7077", "sc://x", ""])
def test_a_malformed_master_is_refused_before_spark_starts(master):
    from sparktf.session import check_master

    with pytest.raises(ValueError, match="Not a Spark master URL"):
        check_master(master)


def test_an_unreachable_standalone_master_fails_fast():
    import socket
    import time

    from sparktf.session import check_master

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(
        ConnectionError, match=rf"No Spark master answers at spark://127.0.0.1:{port}"
    ):
        check_master(f"spark://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_a_local_connect_server_gets_a_free_port_or_the_one_the_user_named():
    import socket

    from sparktf._local_connect import PORT_SETTING, client_port, local_server_conf

    settings, port = local_server_conf({"spark.ui.enabled": "false"})
    assert settings == {"spark.ui.enabled": "false", PORT_SETTING: str(port)}
    with socket.socket() as server:  # free: it can be bound
        server.bind(("127.0.0.1", port))
    assert local_server_conf({PORT_SETTING: "15100"}) == ({PORT_SETTING: "15100"}, 15100)

    from pyspark.sql.connect.client.core import DefaultChannelBuilder as ChannelBuilder

    with client_port(port):
        assert ChannelBuilder("sc://localhost").endpoint == f"localhost:{port}"
        assert ChannelBuilder("sc://localhost:15003").endpoint == "localhost:15003"
    assert ChannelBuilder("sc://localhost").endpoint == "localhost:15002"
