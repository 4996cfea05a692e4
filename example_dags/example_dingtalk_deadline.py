"""A Deadline Alert: the group's custom robot hears of a run still going 5 seconds after it was queued.

Airflow checks the DAG's ``deadline=`` on the scheduler and, once missed, awaits the callback on the
triggerer (Airflow's "Deadline Alerts" documentation). The triggerer passes a short context (the run as
``dag_run``, and ``deadline``), not a task's: the text uses ``dag_run.dag_id`` and ``dag_run.dag_run_id``.
Run it on the scheduler with a triggerer (``airflow dags trigger example_dingtalk_deadline``):
``dag.test()`` checks no deadline, and in Airflow 3.3.2 fails on this DAG.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task

from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier

with DAG(
    dag_id="example_dingtalk_deadline",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    # [START howto_deadline_alert]
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=5),
        callback=AsyncCallback(
            DingTalkCustomRobotNotifier,
            kwargs={
                "title": "Deadline missed: {{ dag_run.dag_id }}",
                "text": "### ⏰ {{ dag_run.dag_id }} is late\n\nRun `{{ dag_run.dag_run_id }}` was queued "
                "at {{ dag_run.queued_at }} and is still running.",
            },
        ),
    ),
    # [END howto_deadline_alert]
    tags=["example", "dingtalk", "demo:needs-scheduler"],
):

    @task
    def slow_report() -> None:
        time.sleep(15)  # longer than the deadline, so the alert goes out while the run is still going

    slow_report()
