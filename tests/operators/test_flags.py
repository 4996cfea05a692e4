"""Booleans that arrive as text (params, XCom, templates) mean what they say, or are refused.

Before, ``to_all_user="false"`` was truthy: with no lists it sent to the whole organisation, and
``at_all="False"`` @-mentioned every member of the group.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.work_notification import SEND_PATH, DingTalkWorkNotificationHook
from airflow_provider_dingtalk.messages import Text
from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator
from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

CONTEXT: dict[str, Any] = {"params": {"everyone": False, "notify_all": "false"}}


def render(op: Any) -> None:
    with DAG(dag_id="t", schedule=None, start_date=datetime(2025, 1, 1)):
        pass
    op.render_template_fields(CONTEXT)


@pytest.fixture
def env(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    for key, value in dingtalk_conn.airflow_env().items():
        if key != "AIRFLOW_CONN_DINGTALK_DEFAULT":
            monkeypatch.setenv(key, value)
    return dingtalk_conn


@pytest.mark.parametrize("false", ["false", "False", "0", " FALSE ", "no", "off"])
def test_to_all_user_false_as_text_is_false(dingtalk_conn: DingTalkEmulator, false: str) -> None:
    DingTalkMessageOperator(task_id="t", text="hi", userid_list="user1", to_all_user=false).execute({})  # type: ignore[arg-type]
    [send] = dingtalk_conn.requests(SEND_PATH)
    assert "to_all_user" not in send.body and send.body["userid_list"] == "user1"
    assert [d.target for d in dingtalk_conn.inbox()] == ["user1"]


def test_hook_to_all_user_false_as_text_without_lists_sends_nothing(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkValidationError, match="userid_list"):
        DingTalkWorkNotificationHook().send_work_notification(Text(content="hi"), to_all_user="False")  # type: ignore[arg-type]
    assert dingtalk_conn.requests() == []


def test_templated_to_all_user_renders_to_false(dingtalk_conn: DingTalkEmulator) -> None:
    op = DingTalkMessageOperator(
        task_id="t", text="hi", userid_list="user1", to_all_user="{{ params.everyone }}"
    )
    render(op)
    op.execute({})  # type: ignore[arg-type]
    assert [d.target for d in dingtalk_conn.inbox()] == ["user1"]


def test_at_all_false_as_text_mentions_nobody(env: DingTalkEmulator) -> None:
    op = DingTalkCustomRobotOperator(task_id="w", text="disk full", at_all="{{ params.notify_all }}")  # type: ignore[arg-type]
    render(op)
    op.execute({})  # type: ignore[arg-type]
    [delivery] = env.inbox("custom_robot")
    assert delivery.message.get("at", {}).get("isAtAll", False) is False
    assert "@all" not in delivery.message["text"]["content"]


@pytest.mark.parametrize("true", [True, "true", "True", "1", "yes"])
def test_wait_for_delivery_true_as_text(true: Any) -> None:
    assert DingTalkMessageOperator(
        task_id="t", text="x", userid_list="u", wait_for_delivery=true
    ).wait_for_delivery


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("wait_for_delivery", "None"),
        ("fail_on_undelivered", ""),
        ("deferrable", "2"),
        ("fail_on_undelivered", 2),
    ],
)
def test_a_flag_that_is_not_a_boolean_is_refused_at_parse(argument: str, value: Any) -> None:
    with pytest.raises(DingTalkValidationError, match=f"^{argument}: must be true or false") as info:
        DingTalkMessageOperator(task_id="t", text="x", userid_list="u", **{argument: value})
    assert info.value.field == argument
