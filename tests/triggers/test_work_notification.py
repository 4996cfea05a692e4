"""DingTalkDeliveryTrigger run to completion in pytest, against the emulator."""

from __future__ import annotations

import time

from airflow_provider_dingtalk import messages as m
from airflow_provider_dingtalk.hooks.work_notification import (
    RESULT_PATH,
    DingTalkWorkNotificationHook,
    SendResult,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import work_notifications
from airflow_provider_dingtalk.triggers.work_notification import DingTalkDeliveryTrigger


def trigger(task_ids: list[int], **kwargs: object) -> DingTalkDeliveryTrigger:
    args: dict[str, object] = {"task_ids": task_ids, "poll_interval": 0.1, "end_time": time.time() + 30}
    return DingTalkDeliveryTrigger(**(args | kwargs))  # type: ignore[arg-type]


def test_serialize_round_trips() -> None:
    t = trigger([1, 2], agent_id="7", dingtalk_conn_id="other")
    path, kwargs = t.serialize()
    assert path == "airflow_provider_dingtalk.triggers.work_notification.DingTalkDeliveryTrigger"
    assert DingTalkDeliveryTrigger(**kwargs).serialize() == (path, kwargs)


async def test_waits_until_done_then_reports_results(dingtalk_conn: DingTalkEmulator) -> None:
    work_notifications(dingtalk_conn.state).delivery_seconds = 0.3  # still sending at the first poll
    hook = DingTalkWorkNotificationHook()
    hook.send_work_notification(m.Text(content="dup"), userid_list=["user1"])
    task_ids = hook.send_work_notification(m.Text(content="dup"), userid_list=["user1", "user2", "ghost"])
    events = [e async for e in trigger(task_ids).run()]
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "done" and payload["task_ids"] == task_ids
    result = SendResult.from_dict(payload["results"][str(task_ids[0])])
    assert result.invalid_user_id_list == ["ghost"]
    assert [(f.userid, f.code) for f in result.forbidden_list] == [("user1", "143106")]
    assert result.unread_user_id_list == ["user2"]
    statuses = [r.response["progress"]["status"] for r in dingtalk_conn.requests() if "progress" in r.path]
    assert statuses[0] == 1 and statuses[-1] == 2
    assert dingtalk_conn.calls(RESULT_PATH) == 1  # the result is read once, after it is final


async def test_times_out_with_the_pending_task_ids(dingtalk_conn: DingTalkEmulator) -> None:
    work_notifications(dingtalk_conn.state).delivery_seconds = 3600
    hook = DingTalkWorkNotificationHook()
    task_ids = hook.send_work_notification(m.Text(content="slow"), userid_list=["user1"])
    events = [e async for e in trigger(task_ids, end_time=time.time() + 0.3).run()]
    assert [e.payload["status"] for e in events] == ["timeout"]
    assert events[0].payload["pending"] == task_ids
    assert dingtalk_conn.calls(RESULT_PATH) == 0


async def test_dingtalk_errors_become_an_error_event(dingtalk_conn: DingTalkEmulator) -> None:
    events = [e async for e in trigger([999]).run()]
    assert events[0].payload["status"] == "error"
    assert "40035" in events[0].payload["message"]
