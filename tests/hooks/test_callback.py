"""Callback registration against the emulator, whose check_url handshake reaches a real receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.events.app import create_receiver_app
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook
from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST

TOKEN, AES_KEY = "tok-123", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TAGS = ["bpms_instance_change"]


class Nowhere:
    def emit(self, event_type: str, event: dict) -> int:
        return 0


def serve_receiver(aes_key: str, corp_id: str) -> ThreadedServer:
    config = CallbackConfig(receiver_id=corp_id, token=Secret(TOKEN), aes_key=Secret(aes_key), url=None)
    return ThreadedServer(create_receiver_app(config=config, sink=Nowhere()), name="receiver")


@pytest.fixture
def receiver_url(dingtalk_conn: DingTalkEmulator) -> Iterator[str]:
    with serve_receiver(AES_KEY, dingtalk_conn.app.corp_id) as server:
        yield server.url + "/dingtalk/events"


def hook() -> DingTalkCallbackHook:
    return DingTalkCallbackHook(retry_policy=FAST)


def test_register_succeeds_when_the_receiver_answers_the_handshake(
    dingtalk_conn: DingTalkEmulator, receiver_url: str
) -> None:
    hook().register_callback(call_back_tags=TAGS, url=receiver_url, token=TOKEN, aes_key=AES_KEY)
    shown = hook().get_callback()
    assert shown == {"call_back_tag": TAGS, "token": "***", "aes_key": "***", "url": receiver_url}
    # what DingTalk logged about the registration never shows the secrets
    logged = json.dumps([r.body for r in dingtalk_conn.requests("/call_back/register_call_back")])
    assert TOKEN not in logged and AES_KEY not in logged


def test_receiver_with_another_aes_key_fails_the_handshake_with_71009(
    dingtalk_conn: DingTalkEmulator,
) -> None:
    with (
        serve_receiver("Z" * 43, dingtalk_conn.app.corp_id) as server,
        pytest.raises(DingTalkAPIError) as info,
    ):
        hook().register_callback(
            call_back_tags=TAGS, url=server.url + "/dingtalk/events", token=TOKEN, aes_key=AES_KEY
        )
    assert info.value.errcode == 71009
    assert "check_url handshake with an encrypted success" in str(info.value)
    assert AES_KEY not in str(info.value) and TOKEN not in str(info.value)


def test_unreachable_url_fails_with_71012(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as info:
        hook().register_callback(
            call_back_tags=TAGS, url="http://127.0.0.1:9/x", token=TOKEN, aes_key=AES_KEY
        )
    assert info.value.errcode == 71012 and "reach your URL" in str(info.value)


def test_second_register_is_71006_and_update_replaces(
    dingtalk_conn: DingTalkEmulator, receiver_url: str
) -> None:
    h = hook()
    h.register_callback(call_back_tags=TAGS, url=receiver_url, token=TOKEN, aes_key=AES_KEY)
    with pytest.raises(DingTalkAPIError) as info:
        h.register_callback(call_back_tags=TAGS, url=receiver_url, token=TOKEN, aes_key=AES_KEY)
    assert info.value.errcode == 71006
    h.update_callback(call_back_tags=["user_add_org"], url=receiver_url, token=TOKEN, aes_key=AES_KEY)
    assert h.get_callback()["call_back_tag"] == ["user_add_org"]
    h.delete_callback()
    with pytest.raises(DingTalkAPIError, match="71007"):
        h.get_callback()


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        (
            {"call_back_tags": ["bpms_instance_change", "approval_done", "nope"]},
            "call_back_tags",
            "approval_done",
        ),
        ({"call_back_tags": "bpms_instance_change"}, "call_back_tags", "not one string"),
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"token": ""}, "token", "non-empty"),
        ({"aes_key": "short"}, "aes_key", "43"),
    ],
)
def test_bad_registration_is_refused_before_sending(
    dingtalk_conn: DingTalkEmulator, kwargs: dict, field: str, text: str
) -> None:
    args = {
        "call_back_tags": TAGS,
        "url": "https://example.com/cb",
        "token": TOKEN,
        "aes_key": AES_KEY,
        **kwargs,
    }
    with pytest.raises(DingTalkValidationError) as info:
        hook().register_callback(**args)
    assert info.value.field == field and text in str(info.value)
    if field == "call_back_tags" and "nope" in str(info.value):
        assert "bpms_instance_change" not in str(info.value).split("unknown event types")[1].split("]")[0]
    assert dingtalk_conn.calls("/call_back/register_call_back") == 0


def test_failed_results_are_paged_through(dingtalk_conn: DingTalkEmulator) -> None:
    with serve_receiver(AES_KEY, dingtalk_conn.app.corp_id) as server:
        hook().register_callback(
            call_back_tags=TAGS, url=server.url + "/dingtalk/events", token=TOKEN, aes_key=AES_KEY
        )
    # the receiver is gone: nothing is delivered
    for n in range(205):
        assert not dingtalk_conn.push_event(
            {"EventType": "bpms_instance_change", "processInstanceId": f"p{n}"}
        )
    failed = hook().get_callback_failed_results()
    assert [f["processInstanceId"] for f in failed] == [f"p{n}" for n in range(205)]
    assert dingtalk_conn.calls("/call_back/get_call_back_failed_result") == 2
    assert hook().get_callback_failed_results() == []


def test_get_operator_masks_secrets(dingtalk_conn: DingTalkEmulator, receiver_url: str) -> None:
    from airflow_provider_dingtalk.operators.callback import (
        DingTalkGetCallbackOperator,
        DingTalkRegisterCallbackOperator,
    )

    reg = DingTalkRegisterCallbackOperator(
        task_id="r", call_back_tags=TAGS, url=receiver_url, token=TOKEN, aes_key=AES_KEY
    )
    assert reg.execute({}) == {"url": receiver_url, "call_back_tag": TAGS}
    assert reg.execute({})["url"] == receiver_url  # second run updates instead of failing on 71006
    out = DingTalkGetCallbackOperator(task_id="g").execute({})
    assert TOKEN not in json.dumps(out) and AES_KEY not in json.dumps(out)
    assert out["token"] == out["aes_key"] == "***"


def test_register_operator_reads_secrets_from_the_callback_connection(
    dingtalk_conn: DingTalkEmulator, receiver_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dingtalk.operators.callback import DingTalkRegisterCallbackOperator

    conn = {
        "conn_type": "dingtalkcallback",
        "host": receiver_url,
        "login": dingtalk_conn.app.corp_id,
        "password": AES_KEY,
        "extra": {"token": TOKEN},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", json.dumps(conn))
    out = DingTalkRegisterCallbackOperator(task_id="r", call_back_tags=TAGS).execute({})
    assert out == {"url": receiver_url, "call_back_tag": TAGS}
