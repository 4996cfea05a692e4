"""Only the Redis backend's: keys that expire, Redis going away and coming back, a URL kept secret."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from airflow_provider_dingtalk.events.app import create_receiver_app
from airflow_provider_dingtalk.redis import RedisBackend
from airflow_provider_dingtalk.robot_pacer import RobotPacer, pacer_key
from airflow_provider_dingtalk.state import StateUnavailable, backend_for
from airflow_provider_dingtalk.state.files import FileBackend
from airflow_provider_dingtalk.token_cache import TokenCache, cache_key, file_key
from tests.services import RedisServer
from tests.state.conftest import PASSWORD

ROBOT = pacer_key("https://oapi.dingtalk.com", "robot-token")


def backend(url: str, tmp_path: Path) -> RedisBackend:
    (tmp_path / "local").mkdir(mode=0o700, parents=True, exist_ok=True)
    return RedisBackend(url, local=FileBackend(tmp_path / "local"))


def test_every_key_expires_on_its_own(redis_url: str, tmp_path: Path) -> None:
    import redis

    state = backend(redis_url, tmp_path)
    now = time.time()
    pacer = RobotPacer(key=ROBOT, state=state)
    pacer.acquire()
    pacer.block(600)
    TokenCache(key=cache_key("h", "oapi", "app", "s"), state=state, encryption_key=file_key("s")).get(
        lambda: ("tok", 7200)
    )
    state.spool_add(f"alerts-{ROBOT}", "0001", "{}", ttl=86400)
    store = state.event_store(lease=300, clock=time.time)
    store.claim("e1")
    store.claim("e2")
    store.finish("e2")
    client = redis.Redis.from_url(redis_url)
    with state.lock("token-x", lease=30, wait=1):  # a holder that dies here frees it after its lease
        ttls = {k.decode(): client.ttl(k) for k in client.keys("*")}
    assert len(ttls) == 7 and all(k.startswith("dingtalk:") for k in ttls)
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert ttls[f"dingtalk:window:robot-{ROBOT}"] <= 63
    assert 0 < ttls["dingtalk:lock:token-x"] <= 30
    assert 595 <= ttls[f"dingtalk:block:robot-{ROBOT}"] <= 600
    assert 6890 <= ttls[f"dingtalk:blob:token-{cache_key('h', 'oapi', 'app', 's')}"] <= 6900  # 7200 - margin
    assert max(ttls[k] for k in ttls if k.startswith("dingtalk:event:")) <= 3 * 86400
    assert time.time() - now < 5


def test_redis_restarting_mid_storm_falls_back_then_shares_again(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1_000_000.0]
    pacer = RobotPacer(key=ROBOT, state=backend(redis_url, tmp_path), clock=lambda: now[0])
    for _ in range(10):
        pacer.acquire(deadline=now[0])
    redis_server.stop()
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        status = pacer.status()  # never hangs: the socket timeout, no retry storm
        assert time.monotonic() - started < 5
        assert status.free == 20  # this machine's own window: empty
        pacer.acquire(deadline=now[0])
        assert "unreachable" in caplog.text and "130101" in caplog.text  # says what it means
        warnings = caplog.text.count("unreachable")
        pacer.status()
        assert caplog.text.count("unreachable") == warnings  # once a minute, not on every call
        redis_server.start()  # the append-only file brings the 10 sends back
        assert pacer.status().free == 10
        assert "answers again" in caplog.text


def test_the_redis_password_is_never_logged(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = backend(redis_url, tmp_path)
    assert PASSWORD not in repr(state) and "***" in repr(state)
    with caplog.at_level(logging.DEBUG):
        redis_server.stop()
        RobotPacer(key=ROBOT, state=state).status()
        with pytest.raises(StateUnavailable) as info:
            state.event_store(lease=300, clock=time.time).claim("k")
        wrong = backend(redis_url.replace(PASSWORD, "wrong-password-123"), tmp_path)
        redis_server.start()
        RobotPacer(key=ROBOT, state=wrong).status()
    assert "127.0.0.1" in caplog.text  # names the server ...
    assert PASSWORD not in caplog.text and "wrong-password-123" not in caplog.text  # ... not its password
    assert PASSWORD not in str(info.value)


def test_backend_for_reads_the_connection_then_the_config(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dingtalk.exceptions import DingTalkValidationError

    assert backend_for({}).kind == "file"
    monkeypatch.setenv("AIRFLOW__DINGTALK__STATE_BACKEND", "redis")
    monkeypatch.setenv("AIRFLOW__DINGTALK__REDIS_URL", redis_url)
    one = backend_for({})
    assert one.kind == "redis" and backend_for(None) is one  # one client per process and URL
    assert backend_for({"state_backend": "file"}).kind == "file"  # a connection's extra wins
    with pytest.raises(DingTalkValidationError, match=r"connection 'c' extra redis_url"):
        backend_for({"state_backend": "redis"}, owner="connection 'c'")
    with pytest.raises(DingTalkValidationError, match=r"state_backend.*file, redis"):
        backend_for({"state_backend": "memcached"}, owner="connection 'c'")


def test_the_receiver_answers_503_while_redis_is_down_and_records_once_after(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_dingtalk._redact import Secret
    from airflow_provider_dingtalk.crypto import DingTalkCrypto
    from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

    token, aes_key, corp = "tok123", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "dingcorp1"
    config = CallbackConfig(receiver_id=corp, token=Secret(token), aes_key=Secret(aes_key), url=None)
    written: list[str] = []

    class Sink:
        def emit(self, event_type: str, event: dict[str, object]) -> int:
            written.append(event_type)
            return 1

    def push(client: TestClient) -> int:
        s = DingTalkCrypto(token=token, aes_key=aes_key, receiver_id=corp).encrypt(
            '{"EventType": "bpms_task_change", "processInstanceId": "p-9"}'
        )
        query = {"msg_signature": s["msg_signature"], "timeStamp": s["timeStamp"], "nonce": s["nonce"]}
        return client.post("/dingtalk/events", params=query, json={"encrypt": s["encrypt"]}).status_code

    # Two receivers (two API servers behind a load balancer) sharing Redis.
    one, two = (
        TestClient(
            create_receiver_app(
                config=config,
                sink=Sink(),  # type: ignore[arg-type]
                dedup=backend(redis_url, tmp_path / str(i)).event_store(lease=300, clock=time.time),
            )
        )
        for i in (1, 2)
    )
    redis_server.stop()
    assert push(one) == 503 and written == []  # DingTalk retries ...
    redis_server.start()
    assert [push(one), push(two), push(one), push(two)] == [200] * 4  # ... and its retries alternate
    assert written == ["bpms_task_change"]  # one asset event
