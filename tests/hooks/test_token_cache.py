"""The shared token cache: a token belongs to the credentials that fetched it, and the file leaks nothing.

Before, the cache was keyed by host + AppKey, so a wrong or rotated AppSecret kept working off the
cached token for up to two hours; and a token read from the file was not registered with Airflow's
secrets masker (a fetched one was), so a log line with it printed it in clear.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_provider_dingtalk import token_cache
from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10)
USER_GET = "/topapi/v2/user/get"


def hook() -> DingTalkBaseHook:
    return DingTalkBaseHook(retry_policy=FAST)


def new_process() -> None:
    """What a new task process starts with: no token in memory, nothing registered with the masker."""
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    token_cache._memory.clear()
    reset_secrets_masker()


def cache_files() -> list[Path]:
    return sorted(Path(os.environ["AIRFLOW_DINGTALK_STATE_DIR"]).glob("token-*"))


def with_secret(emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    conn = emulator.connection()
    conn["password"] = secret
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize("same_process", [True, False], ids=["same process", "new process"])
def test_a_wrong_secret_never_uses_the_cached_token(
    dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, same_process: bool
) -> None:
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    if not same_process:
        new_process()
    with_secret(dingtalk_conn, monkeypatch, "rotated-or-mistyped-secret")
    with pytest.raises(DingTalkAPIError) as info:
        hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert info.value.errcode == 40089
    assert dingtalk_conn.calls("/gettoken") == 2
    assert dingtalk_conn.calls(USER_GET) == 1


def test_the_right_secret_still_shares_one_token(dingtalk_conn: DingTalkEmulator) -> None:
    hook().get_access_token()
    new_process()
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 1


def test_the_cache_file_holds_neither_the_token_nor_the_secret(dingtalk_conn: DingTalkEmulator) -> None:
    token = hook().get_access_token()
    secret, app_key = dingtalk_conn.app.app_secret, dingtalk_conn.app.app_key
    [data] = [f for f in cache_files() if f.suffix == ".json"]
    stored = data.read_bytes()
    for shown in (token, secret, app_key):
        assert shown.encode() not in stored
        assert all(shown not in f.name for f in cache_files())
    assert data.stat().st_mode & 0o777 == 0o600


def test_a_changed_cache_file_is_refetched_not_trusted(dingtalk_conn: DingTalkEmulator) -> None:
    hook().get_access_token()
    [data] = [f for f in cache_files() if f.suffix == ".json"]
    sealed = data.read_bytes()
    flip = len(sealed) // 2  # one bit somewhere in the middle: the token or its expiry, in any format
    data.write_bytes(sealed[:flip] + bytes([sealed[flip] ^ 1]) + sealed[flip + 1 :])
    new_process()
    hook().call_oapi("POST", USER_GET, json={"userid": "user1"})
    assert dingtalk_conn.calls("/gettoken") == 2
    assert dingtalk_conn.calls(USER_GET) == 1  # the changed token was never sent


def test_a_token_read_from_the_file_is_masked_in_logs(dingtalk_conn: DingTalkEmulator) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    token = hook().get_access_token()
    new_process()
    assert redact(f"calling with {token}") == f"calling with {token}"  # a new process knows nothing yet
    assert hook().get_access_token() == token  # from the file: no gettoken
    assert dingtalk_conn.calls("/gettoken") == 1
    assert token not in str(redact(f"calling with {token}"))
