"""Pushes in DingTalk's two callback setups, and the hosted receiver on the emulator's clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.events.app import create_receiver_app
from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

TOKEN, AES_KEY = "tok-setups", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
EVENT = {"EventType": "bpms_instance_change", "processInstanceId": "p-1", "type": "start"}


class Recorder:
    """A receiver for one receiver id that remembers the events and the query keys of each push."""

    def __init__(self, receiver_id: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.queries: list[set[str]] = []
        config = CallbackConfig(
            receiver_id=receiver_id, token=Secret(TOKEN), aes_key=Secret(AES_KEY), url=None
        )
        self._app = create_receiver_app(config=config, sink=self)

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        self.events.append(event)
        return 1

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.queries.append(set(parse_qs(scope["query_string"].decode())))
        await self._app(scope, receive, send)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadedServer] = []

    def start(receiver: Recorder) -> str:
        servers.append(ThreadedServer(receiver, name="receiver").start())
        return servers[-1].url + "/dingtalk/events"

    yield start
    for server in servers:
        server.stop()


def register(emulator: DingTalkEmulator, url: str, token: str = TOKEN, aes_key: str = AES_KEY) -> Any:
    app = emulator.app
    access = requests.get(
        f"{emulator.url}/gettoken", params={"appkey": app.app_key, "appsecret": app.app_secret}, timeout=5
    ).json()["access_token"]
    body = {"call_back_tag": [EVENT["EventType"]], "token": token, "aes_key": aes_key, "url": url}
    return requests.post(
        f"{emulator.url}/call_back/register_call_back", params={"access_token": access}, json=body, timeout=10
    ).json()


def test_register_call_back_pushes_with_the_corp_id_and_signature_timestamp(
    dingtalk_emulator: DingTalkEmulator, serve: Any
) -> None:
    receiver = Recorder(dingtalk_emulator.app.corp_id)
    assert register(dingtalk_emulator, serve(receiver))["errcode"] == 0
    assert dingtalk_emulator.push_event(EVENT)
    assert receiver.events == [EVENT]
    assert receiver.queries[-1] == {"signature", "timestamp", "nonce"}


def test_console_subscription_pushes_with_the_app_key_and_msg_signature_timestamp(
    dingtalk_emulator: DingTalkEmulator, serve: Any
) -> None:
    receiver = Recorder(dingtalk_emulator.app.app_key)
    dingtalk_emulator.subscribe_events(
        url=serve(receiver), token=TOKEN, aes_key=AES_KEY, tags=["bpms_instance_change"]
    )
    assert receiver.queries == [{"msg_signature", "timeStamp", "nonce"}]  # the console's check_url
    assert dingtalk_emulator.push_event(EVENT)
    assert receiver.events == [EVENT]
    assert receiver.queries[-1] == {"msg_signature", "timeStamp", "nonce"}


def test_a_receiver_set_up_with_the_corp_id_fails_the_console_check(
    dingtalk_emulator: DingTalkEmulator, serve: Any
) -> None:
    wrong = Recorder(dingtalk_emulator.app.corp_id)  # the console's pushes carry the AppKey
    with pytest.raises(ValueError, match="check_url"):
        dingtalk_emulator.subscribe_events(
            url=serve(wrong), token=TOKEN, aes_key=AES_KEY, tags=["bpms_instance_change"]
        )
    with pytest.raises(LookupError):
        dingtalk_emulator.push_event(EVENT)


def test_both_setups_get_the_event(dingtalk_emulator: DingTalkEmulator, serve: Any) -> None:
    by_api, by_console = Recorder(dingtalk_emulator.app.corp_id), Recorder(dingtalk_emulator.app.app_key)
    assert register(dingtalk_emulator, serve(by_api))["errcode"] == 0
    dingtalk_emulator.subscribe_events(
        url=serve(by_console), token=TOKEN, aes_key=AES_KEY, tags=["bpms_instance_change"]
    )
    assert dingtalk_emulator.push_event(EVENT)
    assert by_api.events == by_console.events == [EVENT]


def test_hosted_receiver_follows_the_emulator_clock(
    dingtalk_airflow_db: None, dingtalk_emulator: DingTalkEmulator
) -> None:
    hosted = dingtalk_emulator.receiver
    assert register(dingtalk_emulator, hosted.url, hosted.token, hosted.aes_key)["errcode"] == 0
    # Two hours on: DingTalk signs the push with its (the emulator's) time, and the receiver it hosts
    # must judge the timestamp by the same clock, or every push after advance() is refused as a replay.
    dingtalk_emulator.advance(7200)
    assert dingtalk_emulator.push_event(EVENT)
