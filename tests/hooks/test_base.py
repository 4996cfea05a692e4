"""DingTalkBaseHook against the emulator: tokens, retries, errors — over real HTTP."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import traceback

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.retry import DingTalkTransportError, RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST

USER_GET = "/topapi/v2/user/get"


def hook(**kwargs: object) -> DingTalkBaseHook:
    return DingTalkBaseHook(retry_policy=FAST, **kwargs)  # type: ignore[arg-type]


def test_token_is_fetched_once_and_reused(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    for _ in range(3):
        assert h.call_oapi("POST", USER_GET, json={"userid": "user1"})["result"]["userid"] == "user1"
    # a second hook (a second task in this process) reuses it too
    hook().call_oapi("POST", USER_GET, json={"userid": "user2"})
    assert dingtalk_conn.calls("/gettoken") == 1
    assert dingtalk_conn.calls(USER_GET) == 4


def test_token_shared_through_the_file_cache(dingtalk_conn: DingTalkEmulator) -> None:
    from airflow_provider_dingtalk import token_cache

    hook().get_access_token()
    token_cache._memory.clear()  # as if a new task process started
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 1
    files = list(__import__("pathlib").Path(os.environ["AIRFLOW_DINGTALK_STATE_DIR"]).glob("token-*.json"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600


def test_token_cache_can_be_turned_off(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dingtalk import token_cache

    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", dingtalk_emulator.connection_json(shared_cache=False))
    hook().get_access_token()
    token_cache._memory.clear()
    hook().get_access_token()
    assert dingtalk_emulator.calls("/gettoken") == 2
    assert not list(__import__("pathlib").Path(os.environ["AIRFLOW_DINGTALK_STATE_DIR"]).glob("token-*.json"))


def test_expired_token_is_refreshed_when_dingtalk_says_so(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    # Our cache still trusts the token (real time did not move); DingTalk's clock says it expired.
    dingtalk_conn.advance(7201)
    h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 2
    answers = [r.response["errcode"] for r in dingtalk_conn.requests(USER_GET)]
    assert answers == [0, 40014, 0]


def test_cache_renews_before_expiry_by_its_own_clock(dingtalk_conn: DingTalkEmulator) -> None:
    now = [1_000_000.0]
    h = hook(clock=lambda: now[0])
    first = h.get_access_token()
    now[0] += 7200 - 301  # just inside the 300 s safety margin
    assert h.get_access_token() == first
    now[0] += 2
    dingtalk_conn.advance(7200)
    assert h.get_access_token() != first
    assert dingtalk_conn.calls("/gettoken") == 2


def test_injected_40014_refreshes_once_then_raises(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    h.get_access_token()
    dingtalk_conn.inject(USER_GET, errcode=40014, errmsg="不合法的access_token")
    assert h.call_oapi("POST", USER_GET, json={"userid": "user1"})["errcode"] == 0
    assert dingtalk_conn.calls("/gettoken") == 2

    dingtalk_conn.inject(USER_GET, errcode=40014, errmsg="不合法的access_token", times=2)
    with pytest.raises(DingTalkAPIError) as info:
        h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert info.value.errcode == 40014
    assert dingtalk_conn.calls("/gettoken") == 3  # exactly one more refresh: no loop
    assert dingtalk_conn.calls(USER_GET) == 4


@pytest.mark.parametrize("errcode", [33001, 40001, 42001])
def test_every_token_errcode_triggers_one_refresh(dingtalk_conn: DingTalkEmulator, errcode: int) -> None:
    dingtalk_conn.inject(USER_GET, errcode=errcode)
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 2


def test_token_error_wrapped_in_88_is_unwrapped(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(USER_GET, errcode=88, sub_code=40014, errmsg="不合法的access_token")
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 2


def _token_in_subprocess(conn_json: str, state_dir: str, start_at: float, out: multiprocessing.Queue) -> None:
    os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = conn_json
    os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = state_dir
    time.sleep(max(0.0, start_at - time.time()))
    out.put(DingTalkBaseHook().get_access_token())


def test_processes_starting_together_make_one_gettoken_call(dingtalk_conn: DingTalkEmulator) -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    start_at = time.time() + 1.0
    procs = [
        ctx.Process(
            target=_token_in_subprocess,
            args=(
                os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"],
                os.environ["AIRFLOW_DINGTALK_STATE_DIR"],
                start_at,
                out,
            ),
        )
        for _ in range(8)
    ]
    for p in procs:
        p.start()
    tokens = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    assert len(tokens) == 1
    assert dingtalk_conn.calls("/gettoken") == 1


def test_bad_credentials_raise_40089_without_the_secret(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = dingtalk_emulator.connection()
    conn["password"] = "wrong-secret-value-123"
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", __import__("json").dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DingTalkAPIError) as info:
        hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    err = info.value
    assert err.errcode == 40089
    assert "AppSecret" in str(err)  # says what to fix
    assert err.request_id
    shown = str(err) + repr(err) + "".join(traceback.format_exception(err)) + caplog.text
    assert "wrong-secret-value-123" not in shown
    assert dingtalk_emulator.calls("/gettoken") == 1  # not retried: retrying can't fix credentials
    assert "wrong-secret-value-123" not in str([vars(r) for r in dingtalk_emulator.requests()])


def test_permanent_errors_are_not_retried(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(USER_GET, errcode=88, sub_code=60011, errmsg="没有调用该接口的权限")
    with pytest.raises(DingTalkAPIError) as info:
        hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert info.value.errcode == 60011 and info.value.sub_code == "60011"
    assert "Permissions" in str(info.value)
    assert dingtalk_conn.calls(USER_GET) == 1


def test_retries_give_up_after_the_policy_bound(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(USER_GET, errcode=-1, times=100)
    with pytest.raises(DingTalkAPIError) as info:
        hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert info.value.errcode == -1
    assert dingtalk_conn.calls(USER_GET) == FAST.attempts


def test_read_timeout_is_bounded(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", dingtalk_emulator.connection_json(read_timeout=0.3))
    h = DingTalkBaseHook(retry_policy=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02))
    h.get_access_token()
    dingtalk_emulator.inject(USER_GET, delay=2.0, times=3)
    started = time.monotonic()
    with pytest.raises(DingTalkTransportError) as info:
        h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert time.monotonic() - started < 3 * 0.3 + 1.5
    assert "timed out" in str(info.value).lower()
    assert "access_token=***" in str(info.value) or "access_token" not in str(info.value)


def test_transport_errors_never_show_the_token(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection()
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", __import__("json").dumps(conn))
    h = hook()
    token = h.get_access_token()
    dingtalk_emulator.stop()  # connection refused from now on
    with pytest.raises(DingTalkTransportError) as info:
        h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    text = str(info.value) + "".join(traceback.format_exception(info.value))
    assert token not in text and conn["password"] not in text
    assert "Connection" in text or "refused" in text.lower()


def test_test_connection(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook().test_connection()
    assert ok and dingtalk_conn.app.app_key in message
    conn = dingtalk_conn.connection()
    conn["password"] = "nope"
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", __import__("json").dumps(conn))
    ok, message = hook().test_connection()
    assert not ok and "40089" in message and "nope" not in message


def test_missing_credentials_name_the_field(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection()
    conn["password"] = ""
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", __import__("json").dumps(conn))
    with pytest.raises(ValueError, match=r"password \(AppSecret\)"):
        hook().get_access_token()
    assert dingtalk_emulator.requests() == []


def test_debug_logs_of_requests_never_show_secrets(
    dingtalk_conn: DingTalkEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = hook()
    token = h.get_access_token()
    h.call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert "gettoken" in caplog.text  # urllib3 did log the request lines
    assert token not in caplog.text and dingtalk_conn.app.app_secret not in caplog.text
