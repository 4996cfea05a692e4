"""Release a data export only after the data owner approves it in DingTalk; tell the requester otherwise.

``data_owner_approval`` starts an OA approval (审批) on the export template and waits on the
triggerer until the data owner decides. With ``fail_on_refuse=False`` a refusal is an outcome, not a
failure, and ``route`` branches on it. Against the emulator the template is its demo template
``PROC-EMULATOR-DATA-EXPORT`` (approver ``user2``); in your organisation use your template's
``processCode`` (see the Approvals guide).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_dingtalk.operators.approval import DingTalkApprovalOperator
from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator

with DAG(
    dag_id="example_dingtalk_approval",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):
    # [START howto_approval]
    approval = DingTalkApprovalOperator(
        task_id="data_owner_approval",
        process_code="PROC-EMULATOR-DATA-EXPORT",
        originator_user_id="user1",
        dept_id=-1,
        form_values={
            "Dataset": "orders",
            "Rows": 1200,
            "Destination": "Partner SFTP",
            # a date range, named by either of its labels; manual runs have no logical date
            "Start": ["{{ dag_run.run_after | ds }}", "{{ dag_run.run_after | ds }}"],
            "Reason": "Monthly partner export, run {{ run_id }}",
        },
        fail_on_refuse=False,  # a refusal is an outcome to branch on
        timeout=timedelta(days=3),
        terminate_on_timeout=True,  # revoke it rather than leave it in the owner's to-do list
    )
    # [END howto_approval]

    @task.branch
    def route(outcome: dict) -> str:
        return "export" if outcome["outcome"] == "agree" else "tell_requester"

    @task
    def export(outcome: dict) -> str:
        print(f"Exporting: approved by {', '.join(outcome['decided_by'])} ({outcome['business_id']})")
        return outcome["instance_id"]

    tell_requester = DingTalkMessageOperator(
        task_id="tell_requester",
        text="The orders export was not approved: "
        "{{ ti.xcom_pull(task_ids='data_owner_approval')['remarks'] | join('; ') }}",
        userid_list=["user1"],
    )

    route(approval.output) >> [export(approval.output), tell_requester]
