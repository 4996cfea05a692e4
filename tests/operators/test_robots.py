"""The robot operators against the emulator: templates, shorthand, both app-robot targets, the example."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import Link
from airflow_provider_dingtalk.operators.app_robot import DingTalkAppRobotOperator
from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

URL = "https://example.com/run"
CONTEXT: dict[str, Any] = {"ds": "2025-01-02", "run_id": "manual__1", "people": "user1,user2"}


@pytest.fixture
def env(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    for key, value in dingtalk_conn.airflow_env().items():
        if key != "AIRFLOW_CONN_DINGTALK_DEFAULT":  # keep the fixture's short timeouts
            monkeypatch.setenv(key, value)
    return dingtalk_conn


def render(op: DingTalkCustomRobotOperator | DingTalkAppRobotOperator) -> None:
    with DAG(dag_id="t", schedule=None, start_date=datetime(2025, 1, 1)):
        pass
    op.render_template_fields(CONTEXT)  # type: ignore[arg-type]


def test_webhook_operator_renders_templates_and_mentions(env: DingTalkEmulator) -> None:
    op = DingTalkCustomRobotOperator(
        task_id="w", markdown="load {{ ds }} done", title="Load {{ ds }}", at_user_ids="{{ people }}"
    )
    render(op)
    op.execute({})
    (delivered,) = env.inbox("custom_robot")
    body = delivered.message
    assert body["markdown"]["title"] == "Load 2025-01-02"
    assert (
        body["markdown"]["text"].startswith("load 2025-01-02 done")
        and "@user1 @user2" in body["markdown"]["text"]
    )
    assert body["at"]["atUserIds"] == ["user1", "user2"]


def test_webhook_operator_renders_inside_a_message_object(env: DingTalkEmulator) -> None:
    op = DingTalkCustomRobotOperator(
        task_id="w",
        message=Link(title="Run {{ run_id }}", text="t", message_url="https://x.example.com/{{ ds }}"),
    )
    render(op)
    op.execute({})
    link = env.inbox("custom_robot")[0].message["link"]
    assert (link["title"], link["messageUrl"]) == ("Run manual__1", "https://x.example.com/2025-01-02")


def test_shorthand_is_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(DingTalkValidationError):
        DingTalkCustomRobotOperator(task_id="w", text="a", markdown="b", title="c")
    with pytest.raises(DingTalkValidationError):
        DingTalkCustomRobotOperator(task_id="w", markdown="b")
    with pytest.raises(DingTalkValidationError):
        DingTalkAppRobotOperator(task_id="r", text="a")  # neither group nor users
    with pytest.raises(DingTalkValidationError):
        DingTalkAppRobotOperator(task_id="r", text="a", open_conversation_id="cid1", user_ids=["u"])


def test_robot_operator_sends_to_a_group_and_to_templated_users(env: DingTalkEmulator) -> None:
    group = DingTalkAppRobotOperator(task_id="g", text="done {{ ds }}", open_conversation_id="cid9")
    render(group)
    key = group.execute({})
    assert env.inbox("app_robot_group")[0].message["msgParam"] == {"content": "done 2025-01-02"}
    assert env.inbox("app_robot_group")[0].meta["process_query_key"] == key
    users = DingTalkAppRobotOperator(task_id="u", text="hi", user_ids="{{ people }}")
    render(users)
    keys = users.execute({})
    assert isinstance(keys, list) and len(keys) == 1
    assert [d.target for d in env.inbox("app_robot_oto")] == ["user1", "user2"]


def test_example_dag_runs_to_success(env: DingTalkEmulator, dingtalk_airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag_file = Path(__file__).parents[2] / "example_dags" / "example_dingtalk_robot.py"
    dag = DagBag(dag_folder=str(dag_file)).get_dag("example_dingtalk_robot")
    assert dag is not None
    assert dag.test().state == "success"
    webhook = [d.message for d in env.inbox("custom_robot")]
    assert [m["msgtype"] for m in webhook] == ["markdown", "actionCard"]
    assert "@13800000000" in webhook[0]["markdown"]["text"]
    assert [d.target for d in env.inbox("app_robot_group")] == ["cidNightlyOps"]
    assert sorted(d.target for d in env.inbox("app_robot_oto")) == ["user1", "user2"]


def test_robot_operators_send_raw_dicts_with_templates(env: DingTalkEmulator) -> None:
    webhook = DingTalkCustomRobotOperator(
        task_id="w",
        message={
            "msgtype": "actionCard",
            "actionCard": {"title": "Run {{ run_id }}", "text": "x", "singleTitle": "Open", "singleURL": URL},
        },
    )
    robot = DingTalkAppRobotOperator(
        task_id="r",
        message={"msgKey": "sampleMarkdown", "msgParam": {"title": "T", "text": "load {{ ds }}"}},
        open_conversation_id="cid9",
    )
    as_json = DingTalkCustomRobotOperator(  # a template that renders the whole dict as JSON text
        task_id="j",
        message='{"msgtype": "text", "text": {"content": "{{ ds }}"}}',
        at_user_ids="{{ people }}",
    )
    for op in (webhook, robot, as_json):
        render(op)
        op.execute({})
    card, text = (d.message for d in env.inbox("custom_robot"))
    assert card["actionCard"]["title"] == "Run manual__1"
    assert text["text"]["content"].startswith("2025-01-02") and text["at"]["atUserIds"] == ["user1", "user2"]
    assert env.inbox("app_robot_group")[0].message["msgParam"] == {"title": "T", "text": "load 2025-01-02"}


def test_robot_operators_refuse_a_wrong_raw_dict_before_sending(env: DingTalkEmulator) -> None:
    webhook = DingTalkCustomRobotOperator(
        task_id="w", message={"msgtype": "markdown", "markdown": {"title": "T", "txt": "x"}}
    )
    robot = DingTalkAppRobotOperator(
        task_id="r", message={"msgKey": "sampleFile", "msgParam": {}}, user_ids=["user1"]
    )
    for op, field in ((webhook, "markdown.txt"), (robot, "msgKey")):
        render(op)
        with pytest.raises(DingTalkValidationError) as err:
            op.execute({})
        assert err.value.field == field
    assert env.inbox() == []
