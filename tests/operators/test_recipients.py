"""Recipients as templates render them: a JSON list is the list; DingTalk's comma form still works."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_dingtalk.operators.app_robot import DingTalkAppRobotOperator
from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

CONTEXT: dict[str, Any] = {"params": {"people": ["user1", "user2"]}}


def render(op: Any) -> None:
    with DAG(dag_id="t", schedule=None, start_date=datetime(2025, 1, 1)):
        pass
    op.render_template_fields(CONTEXT)


def test_a_list_rendered_as_json_is_the_list(dingtalk_conn: DingTalkEmulator) -> None:
    op = DingTalkMessageOperator(task_id="t", text="hi", userid_list="{{ params.people | tojson }}")
    render(op)
    op.execute({})  # type: ignore[arg-type]
    assert [d.target for d in dingtalk_conn.inbox()] == ["user1", "user2"]


def test_app_robot_takes_a_json_list_and_a_comma_list(dingtalk_conn: DingTalkEmulator) -> None:
    for user_ids in ('["user1", "user2"]', " user1, user2 ,"):
        DingTalkAppRobotOperator(task_id="t", text="hi", user_ids=user_ids).execute({})  # type: ignore[arg-type]
    assert [d.target for d in dingtalk_conn.inbox("app_robot_oto")] == ["user1", "user2"] * 2
