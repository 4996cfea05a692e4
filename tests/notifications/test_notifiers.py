"""The three notifiers called the way Airflow calls them (``notifier(context)``), against the emulator.

Contexts here are built by hand (what a task callback passes); ``test_dag_alerts.py`` runs real DAGs.
"""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_dingtalk.notifications import (
    DingTalkAppRobotNotifier,
    DingTalkCustomRobotNotifier,
    DingTalkNotifier,
    send_dingtalk_app_robot_notification,
    send_dingtalk_custom_robot_notification,
    send_dingtalk_notification,
)
from airflow_provider_dingtalk.notifications._base import DingTalkBaseNotifier
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST, LOG_URL, Logs, fake_context


@pytest.fixture
def channels(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """``dingtalk_default`` (app) and ``dingtalk_custom_robot_default`` (signed robot) → the emulator."""
    robot = dingtalk_conn.add_robot()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", dingtalk_conn.webhook_connection_json(robot)
    )
    return dingtalk_conn


def all_three(**kwargs: Any) -> list[DingTalkBaseNotifier]:
    return [
        DingTalkNotifier(userid_list=["user1"], retry_policy=FAST, **kwargs),
        DingTalkCustomRobotNotifier(retry_policy=FAST, **kwargs),
        DingTalkAppRobotNotifier(open_conversation_id="cidOps", retry_policy=FAST, **kwargs),
    ]


EVERY_FIELD = (
    "etl", "load", "**Map index**: 3", "manual__r1", "2 of 3", "failed", "ValueError: bad row 17", "42.5 s",
    "worker-7", LOG_URL, "View log",
)  # fmt: skip


def text_of(message: dict[str, Any]) -> str:
    """The visible text of a delivered message, whatever the channel's dialect."""
    return json.dumps(message, ensure_ascii=False)


def test_function_style_aliases_alert_on_their_channels(channels: DingTalkEmulator) -> None:
    """Spelled as Airflow's other providers spell notifiers: ``send_smtp_notification(...)``."""
    send_dingtalk_notification(userid_list=["user1"], retry_policy=FAST)(fake_context())
    send_dingtalk_custom_robot_notification(retry_policy=FAST)(fake_context())
    send_dingtalk_app_robot_notification(open_conversation_id="cidOps", retry_policy=FAST)(fake_context())
    assert [d.channel for d in channels.inbox()] == ["work_notification", "custom_robot", "app_robot_group"]


def test_default_alert_on_every_channel_has_every_field(channels: DingTalkEmulator) -> None:
    for notifier in all_three():
        notifier(fake_context(exception=ValueError("bad row 17")))
    inbox = channels.inbox()
    assert [d.channel for d in inbox] == ["work_notification", "custom_robot", "app_robot_group"]
    for delivery in inbox:
        text = text_of(delivery.message)
        for expected in EVERY_FIELD:
            assert expected in text, (delivery.channel, expected)


@pytest.mark.parametrize("limit_channel", ["work_notification", "custom_robot", "app_robot_group"])
def test_a_100_kb_traceback_is_trimmed_and_delivered(channels: DingTalkEmulator, limit_channel: str) -> None:
    huge = RuntimeError("boom " + "x" * 100_000)
    notifier = {n.__class__.__name__: n for n in all_three()}[
        {
            "work_notification": "DingTalkNotifier",
            "custom_robot": "DingTalkCustomRobotNotifier",
            "app_robot_group": "DingTalkAppRobotNotifier",
        }[limit_channel]
    ]
    notifier(fake_context(exception=huge))
    (delivery,) = channels.inbox(limit_channel)
    text = text_of(delivery.message)
    assert "RuntimeError: boom xxx" in text and "truncated" in text and LOG_URL in text
    assert "x" * 100_000 not in text


def test_work_notification_fits_2048_bytes_exactly(channels: DingTalkEmulator) -> None:
    DingTalkNotifier(userid_list=["user1"], retry_policy=FAST)(fake_context(exception="é" * 5000))
    (request,) = [r for r in channels.requests() if "asyncsend_v2" in r.path]
    assert request.response["errcode"] == 0
    (delivery,) = channels.inbox("work_notification")
    size = len(json.dumps(delivery.message, ensure_ascii=False, separators=(",", ":")).encode())
    assert 1900 < size <= 2048


def test_user_text_and_title_are_templates(channels: DingTalkEmulator) -> None:
    notifier = DingTalkCustomRobotNotifier(
        title="{{ ti.task_id }} broke",
        text="Run {{ run_id }} of {{ ti.dag_id }}: {{ exception }}",
        retry_policy=FAST,
    )
    notifier(fake_context(exception="disk full"))
    (delivery,) = channels.inbox("custom_robot")
    assert delivery.message["markdown"] == {"title": "load broke", "text": "Run manual__r1 of etl: disk full"}


def test_one_instance_renders_each_context_afresh(channels: DingTalkEmulator) -> None:
    notifier = DingTalkCustomRobotNotifier(
        title="{{ ti.task_id }}", text="{{ ti.task_id }} in {{ run_id }}", retry_policy=FAST
    )
    notifier(fake_context(task_id="first", run_id="run_a"))
    notifier(fake_context(task_id="second", run_id="run_b"))
    texts = [d.message["markdown"]["text"] for d in channels.inbox("custom_robot")]
    assert texts == ["first in run_a", "second in run_b"]
    assert notifier.text == "{{ ti.task_id }} in {{ run_id }}"  # the template itself is untouched


def test_work_notification_text_is_unique_per_task_instance_try(channels: DingTalkEmulator) -> None:
    notifier = DingTalkNotifier(
        userid_list=["user1"], text="Something failed, please look.", retry_policy=FAST
    )
    notifier(fake_context(try_number=1))
    notifier(fake_context(try_number=2))
    texts = [text_of(d.message) for d in channels.inbox("work_notification")]
    assert len(texts) == 2 and texts[0] != texts[1]  # DingTalk would drop the second identical one
    assert "etl/manual__r1/load/3/1" in texts[0] and "etl/manual__r1/load/3/2" in texts[1]


def test_a_broken_template_sends_the_default_alert(channels: DingTalkEmulator, logs: Logs) -> None:
    notifier = DingTalkCustomRobotNotifier(text="{{ no_such_thing.attr }}", retry_policy=FAST)
    notifier(fake_context(exception="x"))
    (delivery,) = channels.inbox("custom_robot")
    assert "Task failed: etl.load[3]" in text_of(delivery.message)
    assert "template failed" in logs.text


def test_mentions_make_a_markdown_alert_with_the_link_inline(channels: DingTalkEmulator) -> None:
    DingTalkCustomRobotNotifier(at_mobiles="13800000000", at_user_ids=["user1"], retry_policy=FAST)(
        fake_context()
    )
    (delivery,) = channels.inbox("custom_robot")
    assert delivery.message["msgtype"] == "markdown"
    assert (
        delivery.message["at"]["atUserIds"] == ["user1"]
        and "@13800000000" in delivery.message["markdown"]["text"]
    )
    assert f"[View log]({LOG_URL})" in delivery.message["markdown"]["text"]


def test_app_robot_to_users(channels: DingTalkEmulator) -> None:
    DingTalkAppRobotNotifier(user_ids="user1,user2", retry_policy=FAST)(fake_context())
    assert sorted(d.target for d in channels.inbox("app_robot_oto")) == ["user1", "user2"]


def test_dingtalk_down_logs_returns_in_bounded_time(channels: DingTalkEmulator, logs: Logs) -> None:
    channels.stop()
    notifiers = [
        DingTalkNotifier(userid_list=["user1"], timeout=1),
        DingTalkCustomRobotNotifier(timeout=1),
        DingTalkAppRobotNotifier(open_conversation_id="cidOps", timeout=1),
    ]
    for notifier in notifiers:
        started = time.monotonic()
        notifier(fake_context(exception="x"))  # must not raise
        assert time.monotonic() - started < 4
    logged = logs.text
    for name in ("DingTalkNotifier", "DingTalkCustomRobotNotifier", "DingTalkAppRobotNotifier"):
        assert re.search(rf"not delivered.*\b{name}\b", logged), name


def test_dingtalk_refusal_is_logged_with_its_errcode(channels: DingTalkEmulator, logs: Logs) -> None:
    channels.inject(
        "/topapi/message/corpconversation/asyncsend_v2", errcode=40056, errmsg="不合法的agentid", times=5
    )
    channels.inject("/robot/send", errcode=310000, errmsg="keywords not in content", times=5)
    DingTalkNotifier(userid_list=["user1"], retry_policy=FAST)(fake_context())
    DingTalkCustomRobotNotifier(retry_policy=FAST)(fake_context())
    assert "errcode 40056" in logs.text and "errcode 310000" in logs.text
    assert channels.inbox("work_notification") == [] and channels.inbox("custom_robot") == []


def test_a_hanging_dingtalk_is_cut_off_at_the_timeout(
    channels: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    hang = 10.0
    # The connection would wait out the hang: only the notifier's own timeout can end the call sooner.
    # DingTalk then drops the request, so nothing arrives late in another test's inbox.
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT",
        channels.webhook_connection_json(channels.add_robot(), read_timeout=2 * hang),
    )
    channels.inject("/robot/send", delay=hang, drop="before", times=3)
    started = time.monotonic()
    DingTalkCustomRobotNotifier(timeout=1)(fake_context())
    # A timeout of 1 s, a hang of 10: however loaded the machine, returning before half the hang is
    # the cut-off, and the log says it was.
    assert time.monotonic() - started < hang / 2
    assert "not delivered within 1 s (timeout)" in logs.text
    assert channels.calls("/robot/send") == 1 and channels.inbox() == []


def test_no_secret_in_any_alert_or_log(channels: DingTalkEmulator, logs: Logs) -> None:
    robot = channels.add_robot()
    secrets = [channels.app.app_secret, robot.token, str(robot.secret)]
    for notifier in all_three():
        notifier(fake_context(exception=ValueError("failed")))
    channels.inject("/robot/send", errcode=300001, errmsg="token is not exist")
    DingTalkCustomRobotNotifier(retry_policy=FAST)(fake_context())
    tokens = [r.query.get("access_token") for r in channels.requests()]  # masked in the log, so read state
    seen = logs.text + "".join(text_of(d.message) for d in channels.inbox())
    for secret in [*secrets, *channels.state.tokens]:
        assert secret not in seen
    assert tokens  # the requests did happen


def test_dag_level_notifier_renders_with_a_serialized_dag() -> None:
    # apache/airflow#64649: under dag.test() the DAG in the context has no get_template_env.
    notifier = DingTalkCustomRobotNotifier(text="{{ run_id }}")
    env = notifier.get_template_env(dag=SimpleNamespace(dag_id="etl"))  # type: ignore[arg-type]
    assert env.from_string("{{ x }}").render(x=1) == "1"


def test_hitl_notifier_carries_the_required_action_link(
    channels: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example.com")
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST)
    approval = ApprovalOperator(task_id="approve", subject="Ship it?", notifiers=[notifier])
    context = fake_context(task_id="approve", state="awaiting_input", map_index=-1)
    context["task"] = approval
    for hitl_notifier in approval.notifiers:
        hitl_notifier(context)
    (delivery,) = channels.inbox("custom_robot")
    card = delivery.message["actionCard"]
    assert card["btns"][0] == {
        "title": "Respond in Airflow",
        "actionURL": "http://airflow.example.com/dags/etl/runs/manual__r1/tasks/approve/required_actions?map_index=-1",
    }
    assert card["btns"][1]["title"] == "View log" and "awaiting input" in card["title"]


async def test_awaited_in_the_triggerer_it_does_not_block_the_loop(channels: DingTalkEmulator) -> None:
    """Deadline Alerts await the notifier (``await notifier``) on the triggerer's event loop."""
    import asyncio

    notifier = DingTalkCustomRobotNotifier(text="Deadline missed for {{ ti.task_id }}", retry_policy=FAST)
    notifier.context = fake_context()  # type: ignore[assignment]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    beat = asyncio.create_task(ticker())
    channels.inject("/robot/send", delay=0.3)  # a slow DingTalk: the loop must keep running meanwhile
    await notifier
    beat.cancel()
    (delivered,) = channels.inbox("custom_robot")
    assert delivered.message["markdown"]["text"] == "Deadline missed for load"
    assert ticks > 50


RAW_MESSAGES: dict[str, dict[str, Any]] = {
    "work_notification": {
        "msgtype": "markdown",
        "markdown": {"title": "ETL", "text": "{{ ti.task_id }} broke"},
    },
    "custom_robot": {
        "msgtype": "text",
        "text": {"content": "{{ ti.task_id }} broke"},
        "at": {"atUserIds": ["oncall"]},
    },
    "app_robot_group": {"msgKey": "sampleText", "msgParam": {"content": "{{ ti.task_id }} broke"}},
}


def test_notifiers_send_a_raw_dict_of_their_dialect(channels: DingTalkEmulator) -> None:
    for notifier, raw in zip(all_three(), RAW_MESSAGES.values(), strict=True):
        notifier.message = raw
        notifier(fake_context())
    wn, robot, app = (d.message for d in channels.inbox())
    # the work notification carries the alert's identity, or DingTalk would drop the next day's same text
    assert wn["markdown"] == {"title": "ETL", "text": "load broke\n\n`etl/manual__r1/load/3/2`"}
    assert robot["text"]["content"].startswith("load broke") and robot["at"]["atUserIds"] == ["oncall"]
    assert app == {"msgKey": "sampleText", "msgParam": {"content": "load broke"}}


def test_a_notifier_message_dingtalk_refuses_sends_the_default_alert(
    channels: DingTalkEmulator, logs: Logs
) -> None:
    """A misspelt key (DingTalk would send the message without it) is named, and a person still hears."""
    broken = {"msgtype": "text", "text": {"contnet": "{{ ti.task_id }} broke"}}
    DingTalkCustomRobotNotifier(message=broken, retry_policy=FAST)(fake_context())
    (delivery,) = channels.inbox()
    assert "View log" in text_of(delivery.message)
    assert "text.contnet" in logs.text and "default alert" in logs.text


def test_a_notifier_takes_mentions_and_msg_uuid_once(channels: DingTalkEmulator) -> None:
    from airflow_provider_dingtalk.exceptions import DingTalkValidationError

    with pytest.raises(DingTalkValidationError, match="one place"):
        DingTalkCustomRobotNotifier(message=RAW_MESSAGES["custom_robot"], at_all=True)
    with pytest.raises(DingTalkValidationError) as err:
        DingTalkCustomRobotNotifier(message={"msgtype": "text", "text": {"content": "x"}, "msgUuid": "a"})
    assert err.value.field == "msgUuid"
    with pytest.raises(DingTalkValidationError, match="not both"):
        DingTalkNotifier(userid_list=["u"], message=RAW_MESSAGES["work_notification"], text="x")
