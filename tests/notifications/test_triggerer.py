"""Notifiers on the triggerer (Deadline Alerts), run through Airflow's own ``CallbackTrigger``.

The scheduler queues the callback with ``callback_kwargs`` = the notifier's arguments plus a
``context`` (``dag_run`` as JSON and the ``deadline``); ``CallbackTrigger.run`` imports the notifier
class, passes ``context`` only if the class accepts it, and awaits the instance.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.notifications.test_notifiers import FAST

NOTIFIER = "airflow_provider_dingtalk.notifications.DingTalkCustomRobotNotifier"


@pytest.fixture
def robot(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", dingtalk_conn.webhook_connection_json())
    return dingtalk_conn


def deadline_context() -> dict[str, Any]:
    """What ``Deadline.handle_miss`` puts in ``callback_kwargs["context"]`` (Airflow 3.3.2)."""
    return {
        "dag_run": {"dag_id": "etl", "run_id": "scheduled__2025-01-01", "state": "running"},
        "deadline": {"id": "0199-deadline", "deadline_time": "2025-01-01T04:00:00+00:00"},
    }


async def run_callback(**kwargs: Any) -> list[dict[str, Any]]:
    from airflow.triggers.callback import CallbackTrigger

    trigger = CallbackTrigger(
        callback_path=NOTIFIER, callback_kwargs={**kwargs, "context": deadline_context()}
    )
    return [event.payload async for event in trigger.run()]


async def test_the_deadline_context_reaches_the_template(robot: DingTalkEmulator) -> None:
    events = await run_callback(text="Deadline missed: {{ dag_run.dag_id }} {{ dag_run.run_id }}")
    assert [e["state"] for e in events] == ["running", "success"]
    (delivered,) = robot.inbox("custom_robot")
    assert delivered.message["markdown"]["text"] == "Deadline missed: etl scheduled__2025-01-01"


async def test_a_broken_template_sends_the_default_alert_instead_of_failing(robot: DingTalkEmulator) -> None:
    events = await run_callback(text="{{ dag_run.dag_id ")  # unclosed
    assert [e["state"] for e in events] == ["running", "success"]
    (delivered,) = robot.inbox("custom_robot")
    assert "etl" in json_text(delivered.message)


async def test_an_unreachable_dingtalk_does_not_fail_the_callback(robot: DingTalkEmulator) -> None:
    robot.inject("/robot/send", status=503, times=100)
    events = await run_callback(text="late", timeout=2)
    assert [e["state"] for e in events] == ["running", "success"]


async def test_awaiting_an_instance_twice_renders_from_the_template_each_time(
    robot: DingTalkEmulator,
) -> None:
    notifier = DingTalkCustomRobotNotifier(
        text="Deadline missed: {{ dag_run.run_id }}", retry_policy=FAST, context=deadline_context()
    )
    await notifier
    await notifier
    assert notifier.text == "Deadline missed: {{ dag_run.run_id }}"  # the instance is not mutated
    texts = [d.message["markdown"]["text"] for d in robot.inbox("custom_robot")]
    assert texts == ["Deadline missed: scheduled__2025-01-01"] * 2


def json_text(message: dict[str, Any]) -> str:
    import json

    return json.dumps(message, ensure_ascii=False)
