"""Failure alerts: a task that fails, one that fails once and succeeds on its retry, and who hears of it.

``load_orders`` is mapped over two regions and fails for "south" (map index 1); ``flaky_api`` fails
its first try and succeeds on the retry; ``publish_report`` says so with a templated message.

The custom robot (``dingtalk_custom_robot_default``) posts every failure and retry in the group chat, the
on-call person gets a work notification from the app (``dingtalk_default``), and the DAG itself
reports a failed run. The run is expected to fail: that is what it demonstrates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

# [START howto_alert_imports]
from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier, DingTalkNotifier

# [END howto_alert_imports]

# [START howto_alert_default_args]
default_args = {
    "on_failure_callback": [
        DingTalkCustomRobotNotifier(at_user_ids=["user1"]),  # the default alert, @-mentioning user1
        DingTalkNotifier(userid_list=["user1"]),  # and a work notification to user1
    ],
    "on_retry_callback": DingTalkCustomRobotNotifier(),
    "retry_delay": timedelta(seconds=0),  # kept tiny so the demo is quick
}
# [END howto_alert_default_args]

with DAG(
    dag_id="example_dingtalk_alerts",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args=default_args,
    # [START howto_alert_dag_level]
    on_failure_callback=DingTalkCustomRobotNotifier(
        title="Run {{ run_id }} failed",
        text="### DAG {{ dag.dag_id }} failed\n\nRun `{{ run_id }}`: {{ reason }}. Someone please look.",
    ),
    # [END howto_alert_dag_level]
    tags=["example", "dingtalk", "demo:expect-failed"],
):

    @task(retries=0)
    def load_orders(region: str) -> None:
        if region == "south":
            raise RuntimeError(f"orders-{region}.csv is missing: the upstream export did not run")

    @task(retries=1)
    def flaky_api(**context: object) -> str:
        ti = context["ti"]
        if getattr(ti, "try_number", 1) < 2:
            raise ConnectionError("the partner API timed out; the retry will do")
        return "ok on try 2"

    # [START howto_alert_success]
    @task(
        on_success_callback=DingTalkCustomRobotNotifier(
            title="Report published",
            text="✅ {{ ti.task_id }} published the report for run {{ run_id }} (try {{ ti.try_number }}).",
        )
    )
    def publish_report() -> None:
        print("report published")

    # [END howto_alert_success]

    load_orders.expand(region=["north", "south"])
    flaky_api() >> publish_report()
