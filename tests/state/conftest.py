"""Both state backends, the file one and the Redis one against a real ``redis-server`` (not a fake)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_dingtalk.state import StateBackend
from airflow_provider_dingtalk.state.files import FileBackend
from tests.services import RedisServer

PASSWORD = "s3cret-redis-pass-42"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(password=PASSWORD).start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server, running and empty (a test that stopped it gets it back)."""
    import redis

    if redis_server.proc is None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


BackendFactory = Callable[[], StateBackend]


@pytest.fixture(params=["file", "redis"])
def new_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BackendFactory:
    """Makes a backend as a new process would (its own client); all made in one test share state."""
    if request.param == "file":
        (tmp_path / "shared").mkdir(mode=0o700)
        return lambda: FileBackend(tmp_path / "shared")
    url = request.getfixturevalue("redis_url")

    def make() -> StateBackend:
        from airflow_provider_dingtalk.redis import RedisBackend

        return RedisBackend(url, local=FileBackend(tmp_path / "local"))

    return make
