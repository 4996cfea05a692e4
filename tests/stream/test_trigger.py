"""The Stream triggers' run() against the emulator's gateway: payload, filters, duplicates, sharing, acks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.triggers.stream import (
    DingTalkStreamEventTrigger,
    DingTalkStreamRobotMessageTrigger,
)

from .conftest import in_thread

FAST = {"keepalive_interval": 0.5, "keepalive_timeout": 0.5}
APPROVAL = {"EventType": "bpms_instance_change", "processCode": "PROC-A", "type": "finish", "result": "agree"}


@pytest.fixture
def conn(emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", emulator.connection_json())
    yield "dingtalk_default"


class Consumer:
    """Pulls from a trigger's run() without pause, as the triggerer does, collecting the payloads."""

    def __init__(self, trigger: Any) -> None:
        self.run = trigger.run()
        self.payloads: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._pull())

    async def _pull(self) -> None:
        async for event in self.run:
            self.payloads.append(event.payload)

    async def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async def enough() -> None:
            while len(self.payloads) < count:
                if self.task.done():
                    self.task.result()  # raises what the trigger raised
                await asyncio.sleep(0.01)

        await asyncio.wait_for(enough(), timeout)
        return self.payloads

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.run.aclose()


async def test_payload_matches_the_http_receiver_plus_stream_headers(
    emulator: DingTalkEmulator, conn: str
) -> None:
    consumer = Consumer(DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST))
    await in_thread(emulator.stream.wait_for_connections)
    event_id = emulator.push_event({**APPROVAL, "processInstanceId": "pi-1"}, via="stream")
    (payload,) = await consumer.wait(1)
    born = payload.pop("eventBornTime")
    assert isinstance(born, int) and born > 1_600_000_000_000
    assert payload == {
        # what the HTTP receiver's decrypted event holds …
        "EventType": "bpms_instance_change",
        "corpId": emulator.app.corp_id,
        "processCode": "PROC-A",
        "type": "finish",
        "result": "agree",
        "processInstanceId": "pi-1",
        # … and the Stream headers
        "eventId": event_id,
        "eventType": "bpms_instance_change",
    }
    json.dumps(payload)  # it must fit in an asset event's extra
    await consumer.close()


async def test_acked_only_after_the_event_is_handed_over(emulator: DingTalkEmulator, conn: str) -> None:
    run = DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST).run()
    first = asyncio.ensure_future(run.__anext__())
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_event(APPROVAL, via="stream")
    await first  # yielded, but the triggerer has not asked for the next one yet
    await asyncio.sleep(0.2)
    assert emulator.stream.acks() == [] and emulator.stream.waiting() == 1
    nxt = asyncio.ensure_future(run.__anext__())  # the triggerer queued it and asks for more
    await in_thread(emulator.stream.wait_until_acked)
    nxt.cancel()
    await asyncio.gather(nxt, return_exceptions=True)
    await run.aclose()


async def test_duplicates_are_dropped_by_event_id(emulator: DingTalkEmulator, conn: str) -> None:
    consumer = Consumer(DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST))
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_event({**APPROVAL, "eventId": "same-id"}, via="stream")
    await in_thread(emulator.stream.wait_until_acked)
    emulator.push_event({**APPROVAL, "eventId": "same-id"}, via="stream")  # DingTalk's duplicate
    emulator.push_event({**APPROVAL, "eventId": "other-id"}, via="stream")
    await in_thread(emulator.stream.wait_until_acked)  # the duplicate is acked, not left to come back
    assert [p["eventId"] for p in await consumer.wait(2)] == ["same-id", "other-id"]
    await consumer.close()


async def test_event_type_and_field_filters(emulator: DingTalkEmulator, conn: str) -> None:
    trigger = DingTalkStreamEventTrigger(
        event_types=["bpms_instance_change"], filters={"processCode": ["PROC-A"], "type": "finish"}, **FAST
    )
    consumer = Consumer(trigger)
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_event(
        {"EventType": "bpms_task_change", "processCode": "PROC-A", "type": "finish"}, via="stream"
    )
    emulator.push_event({**APPROVAL, "processCode": "PROC-B"}, via="stream")
    emulator.push_event({**APPROVAL, "type": "start"}, via="stream")
    wanted = emulator.push_event(APPROVAL, via="stream")
    await in_thread(emulator.stream.wait_until_acked)  # the others are acked and gone, not redelivered
    assert [p["eventId"] for p in await consumer.wait(1)] == [wanted]
    await consumer.close()


async def test_two_triggers_of_one_app_share_one_connection(emulator: DingTalkEmulator, conn: str) -> None:
    approvals = Consumer(DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST))
    tasks = Consumer(DingTalkStreamEventTrigger(event_types=["bpms_task_change"], **FAST))
    await in_thread(emulator.stream.wait_for_connections)
    for n in range(5):
        emulator.push_event({**APPROVAL, "processInstanceId": f"a{n}"}, via="stream")
        emulator.push_event({"EventType": "bpms_task_change", "taskId": n}, via="stream")
    await in_thread(emulator.stream.wait_until_acked)
    assert len(await approvals.wait(5)) == 5 and len(await tasks.wait(5)) == 5  # none taken by the other
    assert len(emulator.stream.snapshot()["connections"]) == 1
    await approvals.close()
    await tasks.close()


async def test_robot_message_becomes_a_payload_with_sender_conversation_and_text(
    emulator: DingTalkEmulator, conn: str
) -> None:
    consumer = Consumer(DingTalkStreamRobotMessageTrigger(**FAST))
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_robot_message(
        {
            "conversationId": "cid-ops",
            "conversationType": "2",
            "senderStaffId": "user-7",
            "senderNick": "Li",
            "msgtype": "text",
            "text": {"content": " rerun nightly_load "},
            "isInAtList": True,
        }
    )
    (payload,) = await consumer.wait(1)
    assert (payload["senderStaffId"], payload["conversationId"], payload["content"]) == (
        "user-7",
        "cid-ops",
        "rerun nightly_load",
    )
    (opened,) = emulator.requests("/v1.0/gateway/connections/open")
    assert opened.body["subscriptions"] == [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]
    await consumer.close()


async def test_bad_credentials_fail_the_trigger_with_dingtalks_error(
    emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_DEFAULT",
        emulator.connection_json().replace(emulator.app.app_secret, "wrong-secret"),
    )
    run = DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST).run()
    with pytest.raises(DingTalkAPIError, match="authFailed"):
        await asyncio.wait_for(run.__anext__(), 10)


def test_serialises_and_rebuilds() -> None:
    trigger = DingTalkStreamEventTrigger(
        event_types=["bpms_instance_change"], filters={"processCode": "PROC-A"}, dingtalk_conn_id="dt"
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_dingtalk.triggers.stream.DingTalkStreamEventTrigger"
    json.dumps(kwargs)
    assert DingTalkStreamEventTrigger(**kwargs).serialize() == (path, kwargs)
    assert kwargs["filters"] == {"processCode": ["PROC-A"]}
    robot = DingTalkStreamRobotMessageTrigger(conversation_ids=["c1"])
    assert DingTalkStreamRobotMessageTrigger(**robot.serialize()[1]).serialize() == robot.serialize()


def test_event_types_must_be_a_list() -> None:
    with pytest.raises(DingTalkValidationError, match="event_types"):
        DingTalkStreamEventTrigger(event_types="bpms_instance_change")


def test_example_dag_parses_with_its_watchers() -> None:
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    path = Path(__file__).parents[2] / "example_dags" / "example_dingtalk_stream.py"
    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"example_dingtalk_stream_approvals", "example_dingtalk_stream_chatops"}
