from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator
from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator

with DAG(dag_id="nightly_report", schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False):
    notify = DingTalkMessageOperator(
        task_id="notify_owners",
        markdown="### Nightly report\nrows: **1,024**",
        title="Nightly report",
        userid_list=["user1", "user2"],
    )
    announce = DingTalkCustomRobotOperator(task_id="announce", text="Nightly report is out")
    notify >> announce
