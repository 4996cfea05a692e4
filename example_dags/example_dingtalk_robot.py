"""Group chats: a custom robot (webhook) with @-mentions, and the app's own robot.

The custom robot uses the ``dingtalk_custom_robot_default`` connection (its access token or webhook URL,
and its ``SEC…`` secret when the robot signs); the app robot uses ``dingtalk_default`` (AppKey and
AppSecret), and ``robotCode`` defaults to the AppKey.

Dates come from ``dag_run.run_after`` (``| ds`` makes it YYYY-MM-DD): a run triggered by hand (UI,
CLI, REST API) has no logical date in Airflow 3, so ``{{ ds }}`` is undefined there.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_dingtalk.messages import ActionCard, Button
from airflow_provider_dingtalk.operators.app_robot import DingTalkAppRobotOperator
from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator

with DAG(
    dag_id="example_dingtalk_robot",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):
    # [START howto_webhook_markdown]
    report = DingTalkCustomRobotOperator(
        task_id="custom_robot_report",
        markdown="### Nightly load {{ dag_run.run_after | ds }}\n- rows: **1,024**\n- status: done",
        title="Nightly load {{ dag_run.run_after | ds }}",
        at_mobiles=["13800000000"],  # "@13800000000" is added to the text so the mention shows
        at_user_ids="user1",  # a list, or a comma-separated string from a template
    )
    # [END howto_webhook_markdown]

    # [START howto_webhook_card]
    card = DingTalkCustomRobotOperator(
        task_id="custom_robot_card",
        message=ActionCard(
            title="Run {{ run_id }}",
            text="The nightly load finished.",
            buttons=[
                Button(title="Open Airflow", url="https://airflow.example.com"),
                Button(title="Open report", url="https://bi.example.com/nightly"),
            ],
            btn_orientation="1",
        ),
    )
    # [END howto_webhook_card]

    # [START howto_app_robot_group]
    group = DingTalkAppRobotOperator(
        task_id="app_robot_group",
        open_conversation_id="cidNightlyOps",  # the group's openConversationId
        text="Nightly load {{ dag_run.run_after | ds }} finished.",
    )
    # [END howto_app_robot_group]

    # [START howto_app_robot_users]
    direct = DingTalkAppRobotOperator(
        task_id="app_robot_users",
        user_ids=["user1", "user2"],
        markdown="Your report for {{ dag_run.run_after | ds }} is ready.",
        title="Report ready",
    )
    # [END howto_app_robot_users]

    report >> card >> [group, direct]
