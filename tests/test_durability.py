"""RECEIVER_REDIS_DURABILITY against real servers: what "stored in Redis" means before the ack."""
import redis

from receiver.redis_server import RedisServer, packaged_binary

from .helpers import FORM, make_app

PUSH = b"account=a&GetReport=b1,13900000000,DELIVRD|b1,13900000001,UNDELIV|"


def push(app):
    response = app.test_client().post("/push/topen", data=PUSH, content_type=FORM)
    assert (response.status_code, response.data) == (200, b"ok")


def test_aof_durability_publishes_once_fsynced(tmp_path, monkeypatch):
    """WAITAOF (Redis >= 7.2, Valkey): pinned to the packaged valkey-server, which has it."""
    with RedisServer(tmp_path / "redis", persistent=True, binary=packaged_binary()) as server:
        app = make_app(server.url, monkeypatch, tmp_path / "data",
                       RECEIVER_REDIS_DURABILITY="aof")
        push(app)
        client = redis.Redis(port=server.port)
        assert client.xlen("sms:dlr") == 2
        assert not list((tmp_path / "data" / "spool").glob("*.spool"))


def test_replica_durability_without_a_replica_spools_instead_of_acking_from_memory(
        tmp_path, monkeypatch, redis_server, r):
    """WAIT 1 confirms no replica: the push is not durable by that definition, so it is
    spooled (and acked from the spool); the dedupe keeps the replay from doubling it."""
    app = make_app(redis_server.url, monkeypatch, tmp_path / "data",
                   RECEIVER_REDIS_DURABILITY="replica", RECEIVER_REDIS_TIMEOUT="0.2")
    push(app)
    assert len(list((tmp_path / "data" / "spool").glob("*.spool"))) == 1
    assert r.xlen("sms:dlr") == 2  # the script ran; only the confirmation was missing
    store = app.extensions["receiver"]
    store.spool.release()
    try:
        store.replayer.drain()
        raise AssertionError("the drain confirmed a replica that does not exist")
    except redis.RedisError:
        pass  # still no replica: the file stays for a later drain
    assert len(list((tmp_path / "data" / "spool").glob("*.spool"))) == 1
    assert r.xlen("sms:dlr") == 2  # the replays never double it
