"""Answering a robot message through its ``sessionWebhook`` (``DingTalkAppRobotHook.reply``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
from airflow_provider_dingtalk.messages import Markdown, Mentions, Text
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.triggers.stream import DingTalkStreamRobotMessageTrigger

from .conftest import in_thread

COMMAND = {
    "conversationId": "cid-ops",
    "conversationType": "2",
    "senderStaffId": "user-7",
    "senderNick": "Li",
    "msgtype": "text",
    "text": {"content": " rerun nightly_load "},
    "isInAtList": True,
}
NO_RETRY = RetryPolicy(attempts=1)


@pytest.fixture
def conn(emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", emulator.connection_json())
    return "dingtalk_default"


async def received(emulator: DingTalkEmulator) -> dict[str, Any]:
    """The robot message as a DAG gets it: pushed by DingTalk, through the Stream trigger."""
    run = DingTalkStreamRobotMessageTrigger(keepalive_interval=0.5, keepalive_timeout=0.5).run()
    assert isinstance(run, AsyncGenerator)
    first = asyncio.ensure_future(run.__anext__())
    await in_thread(emulator.stream.wait_for_connections)
    emulator.push_robot_message(COMMAND)
    event = await asyncio.wait_for(first, 10)
    await run.aclose()
    payload: dict[str, Any] = event.payload
    return payload


def session_of(message: dict[str, Any]) -> str:
    return str(message["sessionWebhook"]).split("session=", 1)[1]


async def test_reply_reaches_the_conversation_mentioning_the_sender(
    emulator: DingTalkEmulator, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = await received(emulator)
    assert message["sessionWebhookExpiredTime"] > time.time() * 1000
    caplog.set_level(logging.DEBUG)
    await in_thread(
        DingTalkAppRobotHook().reply,
        Text(content=f"Rerunning nightly_load for {message['senderNick']}"),
        robot_message=message,
        mentions=Mentions(user_ids=[message["senderStaffId"]]),
    )
    (reply,) = emulator.inbox("session_webhook")
    assert reply.target == "cid-ops"
    assert reply.message == {
        "msgtype": "text",
        "text": {"content": "Rerunning nightly_load for Li\n\n@user-7"},
        "at": {"atMobiles": [], "atUserIds": ["user-7"], "isAtAll": False},
    }
    # The session is a credential for the conversation: not in logs, not in the emulator's request log.
    session = session_of(message)
    assert session not in caplog.text
    assert session not in json.dumps([r.__dict__ for r in emulator.requests()], default=str)


async def test_an_expired_session_webhook_is_refused_before_sending(
    emulator: DingTalkEmulator, conn: str
) -> None:
    message = await received(emulator)
    ninety_one_minutes_on = time.time() + 91 * 60
    hook = DingTalkAppRobotHook(clock=lambda: ninety_one_minutes_on)
    with pytest.raises(DingTalkValidationError, match=r"sessionWebhookExpiredTime: .*expired .*90 minutes"):
        hook.reply(Markdown(title="t", text="too late"), robot_message=message)
    assert emulator.calls("/robot/sendBySession") == 0


async def test_dingtalk_refuses_a_session_it_expired(emulator: DingTalkEmulator, conn: str) -> None:
    message = await received(emulator)
    emulator.advance(91 * 60)  # DingTalk's clock says expired; ours (skewed) does not
    with pytest.raises(DingTalkAPIError) as raised:
        await in_thread(
            DingTalkAppRobotHook(retry_policy=NO_RETRY).reply, Text(content="hi"), robot_message=message
        )
    assert raised.value.errcode == 300001
    assert "send_robot_group_message" in str(raised.value.hint)
    assert session_of(message) not in str(raised.value)
    assert emulator.inbox("session_webhook") == []


@pytest.mark.parametrize(
    ("robot_message", "field", "problem"),
    [
        ({"conversationId": "c"}, "sessionWebhook", "is missing"),
        (
            {"sessionWebhook": "https://evil.example/robot/sendBySession?session=x"},
            "sessionWebhook",
            "not a session URL",
        ),
        (
            {"sessionWebhook": "{host}/robot/sendBySession?session=x", "sessionWebhookExpiredTime": "soon"},
            "sessionWebhookExpiredTime",
            "milliseconds",
        ),
    ],
    ids=["missing", "foreign-host", "bad-expiry"],
)
def test_bad_robot_messages_are_refused_before_sending(
    emulator: DingTalkEmulator, conn: str, robot_message: dict[str, Any], field: str, problem: str
) -> None:
    robot_message = {
        k: v.replace("{host}", emulator.url) if isinstance(v, str) else v for k, v in robot_message.items()
    }
    with pytest.raises(DingTalkValidationError) as raised:
        DingTalkAppRobotHook().reply(Text(content="hi"), robot_message=robot_message)
    assert raised.value.field == field and problem in raised.value.problem
    assert emulator.calls("/robot/sendBySession") == 0


async def test_docs_chatops_reply(emulator: DingTalkEmulator, conn: str) -> None:
    """The docs' ChatOps task, given the asset event that "@bot rerun nightly_load" made."""
    from airflow_provider_dingtalk.event_types import ROBOT_MESSAGE_ASSET_URI

    message = await received(emulator)
    # [START docs_stream_chatops_reply]
    from airflow.sdk import task

    from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
    from airflow_provider_dingtalk.messages import Mentions, Text

    @task
    def answer(*, triggering_asset_events: dict[Any, Any] | None = None) -> list[str]:
        """ "@bot rerun nightly_load": reply to the sender, and return the DAGs to rerun."""
        hook, reruns = DingTalkAppRobotHook(), []
        for events in (triggering_asset_events or {}).values():
            for asset_event in events:
                message = asset_event.extra["payload"]  # the robot message, as DingTalk sent it
                command, _, dag_id = message["content"].partition(" ")
                if command == "rerun" and dag_id:
                    reruns.append(dag_id)
                    text = f"Rerunning {dag_id} for {message['senderNick']}."
                else:
                    text = 'Try "rerun <dag_id>".'
                hook.reply(
                    Text(content=text),
                    robot_message=message,
                    mentions=Mentions(user_ids=[message["senderStaffId"]]),
                )
        return reruns

    # [END docs_stream_chatops_reply]

    from types import SimpleNamespace

    events = {ROBOT_MESSAGE_ASSET_URI: [SimpleNamespace(extra={"from_trigger": True, "payload": message})]}
    assert await in_thread(answer.function, triggering_asset_events=events) == ["nightly_load"]
    (reply,) = emulator.inbox("session_webhook")
    assert reply.message["text"]["content"] == "Rerunning nightly_load for Li.\n\n@user-7"
