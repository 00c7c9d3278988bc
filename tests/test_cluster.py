"""The receiver against a real Redis Cluster (three cluster-mode servers, no replicas)."""
import random
import socket
import time

import pytest
import redis
from redis.cluster import RedisCluster

from receiver import settings
from receiver.redis_server import RedisServer
from receiver.store import Publisher, Streams

from .helpers import FORM, make_app

SLOTS = ((0, 5460), (5461, 10922), (10923, 16383))


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    while True:
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = [RedisServer(tmp_path_factory.mktemp(f"node{n}"), persistent=False, port=cluster_port(),
                         extra_args=("--cluster-enabled", "yes",
                                     "--cluster-config-file", "nodes.conf")).start()
             for n in range(3)]
    try:
        clients = [redis.Redis(port=node.port) for node in nodes]
        for client, (first, last) in zip(clients, SLOTS):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 20
        while not all(c.execute_command("CLUSTER", "INFO").decode().count("cluster_state:ok")
                      for c in clients):
            assert time.monotonic() < deadline, "the cluster did not form"
            time.sleep(0.1)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_pushes_land_on_a_cluster_with_a_hash_tagged_prefix(cluster, monkeypatch, tmp_path):
    app = make_app(cluster[0].url, monkeypatch, tmp_path, RECEIVER_REDIS_CLUSTER="true",
                   RECEIVER_STREAM_PREFIX="{sms}")
    body = b"account=a&GetReport=b1,13900000000,DELIVRD|b1,13900000001,UNDELIV|junk|"
    client = app.test_client()
    for _ in range(2):  # the second push is all duplicates
        response = client.post("/push/topen", data=body, content_type=FORM)
        assert (response.status_code, response.data) == (200, b"ok")
    rc = RedisCluster.from_url(cluster[1].url)
    assert rc.xlen("{sms}:dlr") == 2
    assert rc.xlen("{sms}:deadletter") == 1  # the bad record, dead-lettered once
    assert not list((tmp_path / "spool").glob("*.spool"))  # published, not spooled


def test_old_claims_are_adopted_on_a_cluster(cluster):
    """The key-per-id layout's claims (`{old}:seen:<id>`, in the prefix's slot) are found on
    whichever node holds them and adopted: the record is a duplicate, the key is gone."""
    rc = RedisCluster.from_url(cluster[0].url)
    rc.set("{old}:seen:old-claim", "1", px=60_000)
    publisher = Publisher(rc, Streams("{old}"), dedupe_ttl=60, retention=None)
    entry = ("dlr", "old-claim", {"id": "old-claim"})
    assert publisher.publish([entry, ("dlr", "new", {"id": "new"})]) == [False, True]
    assert not rc.exists("{old}:seen:old-claim")
    assert rc.exists("{old}:seen-adopted")
    assert publisher.publish([entry]) == [False]


def test_a_cluster_without_a_hash_tag_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("RECEIVER_REDIS_CLUSTER", "true")
    monkeypatch.setenv("RECEIVER_STREAM_PREFIX", "sms")
    with pytest.raises(settings.SettingsError, match="RECEIVER_STREAM_PREFIX.*{sms}"):
        settings.load()
