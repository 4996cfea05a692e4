"""The Stream client against the emulator's gateway: handshake, acks, redelivery, ping, disconnect,
dead sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.stream.client import DingTalkStreamClient
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import ForwardProxy

from .conftest import in_thread, make_client, take

APPROVAL = {"EventType": "bpms_instance_change", "processCode": "PROC-1", "type": "finish", "result": "agree"}


async def test_event_arrives_with_string_data_and_headers_and_is_acked(emulator: DingTalkEmulator) -> None:
    messages = make_client(emulator).messages()
    first = asyncio.ensure_future(take(messages, 1))
    await in_thread(emulator.stream.wait_for_connections)
    event_id = emulator.push_event({**APPROVAL, "processInstanceId": "pi-1"}, via="stream")
    (message,) = await first
    assert message.frame.type == "EVENT"
    assert message.frame.headers["eventId"] == event_id
    assert message.frame.headers["eventType"] == "bpms_instance_change"
    assert all(isinstance(v, str) for v in message.frame.headers.values())
    assert message.frame.json() == {
        "processCode": "PROC-1",
        "type": "finish",
        "result": "agree",
        "processInstanceId": "pi-1",
    }
    assert await message.ack()
    await in_thread(emulator.stream.wait_until_acked)
    ack = emulator.stream.acks()[-1]
    assert (ack.code, ack.message_id, ack.data) == (
        200,
        message.frame.message_id,
        {"status": "SUCCESS", "message": "success"},
    )
    assert ack.headers["contentType"] == "application/json"
    await messages.aclose()


async def test_wrong_secret_is_refused_with_authfailed_and_not_retried(emulator: DingTalkEmulator) -> None:
    client = DingTalkStreamClient(
        app_key=emulator.app.app_key, app_secret=Secret("not-the-secret"), api_host=emulator.url
    )
    with pytest.raises(DingTalkAPIError) as caught:
        await asyncio.wait_for(take(client.messages(), 1), 5)
    assert (caught.value.http_status, caught.value.code) == (401, "authFailed")
    assert "not-the-secret" not in str(caught.value)
    assert emulator.calls("/v1.0/gateway/connections/open") == 1
    logged = json.dumps([r.body for r in emulator.requests("/v1.0/gateway/connections/open")])
    assert "not-the-secret" not in logged and emulator.app.app_secret not in logged


def test_ticket_is_single_use_and_refused_before_the_upgrade(emulator: DingTalkEmulator) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    body = {
        "clientId": emulator.app.app_key,
        "clientSecret": emulator.app.app_secret,
        "subscriptions": [{"type": "EVENT", "topic": "*"}],
    }
    opened = requests.post(emulator.url + "/v1.0/gateway/connections/open", json=body, timeout=5).json()
    url = f"{opened['endpoint']}?ticket={opened['ticket']}"
    with connect(url):
        pass
    with pytest.raises(InvalidStatus) as caught:
        connect(url)
    assert caught.value.response.status_code == 401
    emulator.advance(91)  # a fresh ticket, then past its 90 s
    fresh = requests.post(emulator.url + "/v1.0/gateway/connections/open", json=body, timeout=5).json()
    emulator.advance(91)
    with pytest.raises(InvalidStatus):
        connect(f"{fresh['endpoint']}?ticket={fresh['ticket']}")


async def test_unacked_event_is_redelivered_same_event_id_new_message_id(emulator: DingTalkEmulator) -> None:
    messages = make_client(emulator).messages()
    got = asyncio.ensure_future(take(messages, 2))
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_event(APPROVAL, via="stream")
    first, again = await got  # the first is never acked
    assert first.frame.headers["eventId"] == again.frame.headers["eventId"]
    assert first.frame.message_id != again.frame.message_id
    await again.ack()
    await in_thread(emulator.stream.wait_until_acked)
    await messages.aclose()


async def test_later_asks_for_the_event_again(emulator: DingTalkEmulator) -> None:
    messages = make_client(emulator).messages()
    got = asyncio.ensure_future(take(messages, 1))
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_event(APPROVAL, via="stream")
    (first,) = await got
    await first.later()
    (again,) = await take(messages, 1)
    assert again.frame.headers["eventId"] == first.frame.headers["eventId"]
    assert emulator.stream.acks()[0].data["status"] == "LATER"
    await again.ack()
    await in_thread(emulator.stream.wait_until_acked)
    await messages.aclose()


async def test_ping_is_echoed_at_once(emulator: DingTalkEmulator) -> None:
    client = make_client(emulator)
    messages = client.messages()
    pending = asyncio.ensure_future(take(messages, 1, timeout=30))
    await in_thread(emulator.stream.wait_for_connections)
    (opaque,) = await in_thread(emulator.stream.ping)
    for _ in range(200):
        if emulator.stream.snapshot()["echoes"]:
            break
        await asyncio.sleep(0.01)
    (echo,) = emulator.stream.snapshot()["echoes"]
    assert echo["sent"] == opaque and echo["data"] == {"opaque": opaque}
    assert client.stats.pings == 1
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await messages.aclose()


async def test_disconnect_opens_the_next_connection_before_the_old_one_closes(
    emulator: DingTalkEmulator,
) -> None:
    emulator.stream.disconnect_grace = 1.0
    client = make_client(emulator)
    messages = client.messages()
    got = asyncio.ensure_future(take(messages, 1))
    await in_thread(emulator.stream.wait_for_connections)
    (old,) = [c["id"] for c in emulator.stream.snapshot()["connections"]]
    await in_thread(emulator.stream.disconnect)
    # Within the grace period both are open: the old one (draining) and the new one.
    await in_thread(emulator.stream.wait_for_connections, 2, timeout=0.9)
    emulator.push_event(APPROVAL, via="stream")  # goes to the new one: the old one is leaving
    (message,) = await got
    await message.ack()
    await in_thread(emulator.stream.wait_until_acked)
    assert old not in {a.connection for a in emulator.stream.acks()}
    assert (client.stats.handovers, client.stats.lost) == (1, 0)
    await messages.aclose()


@pytest.mark.parametrize("fault", ["drop", "freeze"])
async def test_dead_socket_is_replaced_and_no_event_is_lost(emulator: DingTalkEmulator, fault: str) -> None:
    client = make_client(emulator)
    messages = client.messages()
    seen: list[str] = []

    async def consume() -> None:
        async for message in messages:
            seen.append(message.frame.headers["eventId"])
            await message.ack()  # on a frozen socket this ack never arrives: DingTalk pushes again

    consumer = asyncio.ensure_future(consume())
    await in_thread(emulator.stream.wait_for_connections)
    (old,) = [c["id"] for c in emulator.stream.snapshot()["connections"]]
    await in_thread(getattr(emulator.stream, fault))  # a TCP drop without a frame, or a silent peer
    event_id = emulator.push_event(APPROVAL, via="stream")
    await in_thread(emulator.stream.wait_until_acked)
    assert set(seen) == {event_id}
    assert client.stats.connections >= 2 and client.stats.lost >= 1
    assert old not in {a.connection for a in emulator.stream.acks()}
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await messages.aclose()


async def test_every_push_goes_to_one_of_several_connections(emulator: DingTalkEmulator) -> None:
    clients = [make_client(emulator), make_client(emulator)]
    streams = [c.messages() for c in clients]
    seen: list[str] = []

    async def collect(stream: object) -> None:
        async for message in stream:  # type: ignore[attr-defined]
            seen.append(message.frame.headers["eventId"])
            await message.ack()

    tasks = [asyncio.ensure_future(collect(s)) for s in streams]
    await in_thread(emulator.stream.wait_for_connections, 2)
    ids = [emulator.push_event({**APPROVAL, "processInstanceId": f"pi-{n}"}, via="stream") for n in range(40)]
    await in_thread(emulator.stream.wait_until_acked)
    assert sorted(seen) == sorted(ids)  # each exactly once
    by_connection = {a.connection for a in emulator.stream.acks()}
    assert len(by_connection) == 2  # both carried some
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]


def test_missing_websockets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from airflow_provider_dingtalk.stream import client

    monkeypatch.setitem(sys.modules, "websockets.asyncio", None)
    monkeypatch.setitem(sys.modules, "websockets.asyncio.client", None)
    with pytest.raises(client.StreamDependencyError, match=r"airflow-provider-dingtalk\[stream\]"):
        client._websockets_client()


async def test_a_connection_proxy_carries_the_open_call_and_the_websocket(emulator: DingTalkEmulator) -> None:
    proxy = ForwardProxy()
    try:
        messages = make_client(emulator, proxy=proxy.url).messages()
        first = asyncio.ensure_future(take(messages, 1))
        await in_thread(emulator.stream.wait_for_connections)
        emulator.push_event({**APPROVAL, "processInstanceId": "pi-proxy"}, via="stream")
        (message,) = await first
        assert await message.ack()
        await messages.aclose()
    finally:
        proxy.close()
    netloc = emulator.url.split("://", 1)[1]
    assert proxy.seen[0] == f"POST {emulator.url}/v1.0/gateway/connections/open"
    assert proxy.seen[1] == f"CONNECT {netloc}"  # the WebSocket, tunnelled
