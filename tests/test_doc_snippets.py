"""The Python snippets of the docs (``docs/*.rst`` include them between the [START]/[END] markers),
each run against the emulator, so a snippet that stops working fails CI instead of misleading readers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import fake_context


def test_alert_in_three_lines(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", dingtalk_emulator.webhook_connection_json(robot)
    )
    # [START docs_alert_three_lines]
    from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier

    default_args = {"on_failure_callback": DingTalkCustomRobotNotifier()}
    # [END docs_alert_three_lines]
    default_args["on_failure_callback"](
        fake_context(task_id="load_orders", exception=RuntimeError("disk full"))
    )
    [alert] = dingtalk_emulator.inbox("custom_robot")
    assert "load_orders" in str(alert.message) and "disk full" in str(alert.message)


def test_alert_in_human_in_the_loop() -> None:
    from airflow.sdk import DAG

    with DAG(dag_id="release", schedule=None) as dag:
        # [START docs_alert_hitl]
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        from airflow_provider_dingtalk.notifications import DingTalkNotifier

        ApprovalOperator(
            task_id="approve_release",
            subject="Release {{ run_id }}?",
            notifiers=[DingTalkNotifier(userid_list=["manager1"])],
        )
        # [END docs_alert_hitl]
    [notifier] = dag.get_task("approve_release").notifiers  # type: ignore[attr-defined]
    assert isinstance(notifier, DingTalkNotifier)
    assert notifier.userid_list == ["manager1"]


def test_emulator_from_python(dingtalk_airflow_db: None, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag_file = Path(__file__).parents[1] / "example_dags" / "example_dingtalk_work_notification.py"
    dag = DagBag(dag_folder=str(dag_file)).get_dag("example_dingtalk_work_notification")
    assert dag is not None
    saved = dict(os.environ)
    try:
        # [START docs_emulator_from_python]
        from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

        with DingTalkEmulator() as emulator:  # a free port on 127.0.0.1
            os.environ.update(emulator.airflow_env())  # AIRFLOW_CONN_* for the default conn ids
            dag.test()
            for delivery in emulator.inbox("work_notification"):
                print(delivery.target, delivery.message)
        # [END docs_emulator_from_python]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    printed = capsys.readouterr().out
    assert "user1 {'msgtype': 'text'" in printed


def test_retry_policy_of_a_hook(dingtalk_conn: DingTalkEmulator) -> None:
    # [START docs_retry_policy]
    from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
    from airflow_provider_dingtalk.retry import RetryPolicy

    hook = DingTalkWorkNotificationHook(retry_policy=RetryPolicy(attempts=3, max_elapsed=20))
    # [END docs_retry_policy]
    from dataclasses import replace

    waits: list[float] = []
    hook.retry_policy = replace(hook.retry_policy, sleep=waits.append)  # the backoff, without waiting it
    hook.get_access_token()
    dingtalk_conn.inject("/topapi/v2/user/get", errcode=-1, errmsg="系统繁忙", times=2)
    assert hook.call_oapi("POST", "/topapi/v2/user/get", json={"userid": "user1"})["errcode"] == 0
    assert dingtalk_conn.calls("/topapi/v2/user/get") == 3  # two refusals retried, the third answered
    assert len(waits) == 2 and max(waits) <= 8  # one backoff before each retry, within max_wait


def test_other_message_types() -> None:
    # [START docs_message_types]
    from airflow_provider_dingtalk.messages import File, Image, Link, Voice

    Link(title="Report", text="Nightly numbers", message_url="https://bi.example.com", pic_url="@lADO…")
    Image(path="/data/chart.png")  # a local file: uploaded first (≤ 1 MB)
    Voice(path="/data/memo.amr", duration=12)  # AMR, ≤ 2 MB, 1–60 seconds
    File(media_id="@lAz…")  # an already uploaded file (≤ 10 MB)
    # [END docs_message_types]
    from airflow_provider_dingtalk.messages import to_work_notification

    assert to_work_notification(File(media_id="@lAz…")) == {"msgtype": "file", "file": {"media_id": "@lAz…"}}
    assert Voice(path="/data/memo.amr", duration=12).with_media_id("@v").media_id == "@v"


def test_delivery_tracking_from_python(dingtalk_conn: DingTalkEmulator) -> None:
    from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
    from airflow_provider_dingtalk.messages import OA, Text

    # user1 already got this message today: DingTalk filters the repeat (143106).
    DingTalkWorkNotificationHook().send_work_notification(Text(content="hi"), userid_list=["user1"])
    # [START docs_delivery_tracking]
    hook = DingTalkWorkNotificationHook()
    [task_id] = hook.send_work_notification(Text(content="hi"), userid_list=["user1"])
    progress = hook.get_send_progress(task_id)  # SendProgress; .done once DingTalk has finished
    result = hook.get_send_result(task_id)  # SendResult
    print(result.forbidden_list)  # [ForbiddenUser(userid='user1', code='143106', count=1)]
    hook.recall(task_id)
    # [END docs_delivery_tracking]
    from airflow_provider_dingtalk.hooks.work_notification import ForbiddenUser

    assert progress.status in (1, 2)
    assert result.forbidden_list == [ForbiddenUser(userid="user1", code="143106", count=1)]
    oa = OA(message_url="https://e.com", head_text="ETL", title="t", status_value="Running")
    [oa_task] = hook.send_work_notification(oa, userid_list=["user2"])
    # [START docs_status_bar]
    hook.update_status_bar(oa_task, "Done", "0xFF00AA00")
    # [END docs_status_bar]
    assert dingtalk_conn.calls("/topapi/message/corpconversation/recall") == 1
