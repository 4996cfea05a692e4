"""Work notifications (工作通知): several message types to a few people, waiting for delivery.

Runs against DingTalk or the emulator through the ``dingtalk_default`` connection (whose Agent ID
field names the app). ``{{ run_id }}`` in each message keeps the content unique per run: DingTalk
delivers the same content to the same person only once a day.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_dingtalk.messages import OA, ActionCard, Button, FormRow, Rich
from airflow_provider_dingtalk.operators.work_notification import (
    DingTalkMessageOperator,
    DingTalkUpdateStatusBarOperator,
)

TEAM = ["user1", "user2", "user3"]

with DAG(
    dag_id="example_dingtalk_work_notification",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):
    # [START howto_text]
    send_text = DingTalkMessageOperator(
        task_id="send_text",
        text="Nightly load finished ({{ run_id }})",
        userid_list=TEAM,
    )
    # [END howto_text]

    # [START howto_markdown]
    send_markdown = DingTalkMessageOperator(
        task_id="send_markdown",
        title="Nightly load",
        markdown="### Nightly load\n- run: `{{ run_id }}`\n- status: **success**",
        userid_list="user1,user2",  # a comma-separated string works too (what templates render to)
        dept_id_list=[1],
        wait_for_delivery=True,
        poll_interval=1,
    )
    # [END howto_markdown]

    # [START howto_action_card]
    send_card = DingTalkMessageOperator(
        task_id="send_action_card",
        message=ActionCard(
            title="Approve the release?",
            text="Release **{{ run_id }}** is ready.",
            buttons=[
                Button(title="Approve", url="https://example.com/approve"),
                Button(title="Reject", url="https://example.com/reject"),
            ],
            btn_orientation="1",
        ),
        userid_list=TEAM,
        wait_for_delivery=True,
        fail_on_undelivered=True,
        deferrable=True,  # waits on the triggerer, not in a worker slot
        poll_interval=1,
    )
    # [END howto_action_card]

    # [START howto_oa]
    send_oa = DingTalkMessageOperator(
        task_id="send_oa",
        message=OA(
            message_url="https://example.com/runs/{{ run_id }}",
            head_text="ETL",
            title="Nightly load",
            form=[FormRow(key="Run:", value="{{ run_id }}"), FormRow(key="Tables:", value="12")],
            rich=Rich(num="3.2", unit="GB"),
            status_value="Running",
            status_bg="0xFFF6A623",
        ),
        userid_list=TEAM,
        wait_for_delivery=True,
        fail_on_undelivered=True,
        poll_interval=1,
    )
    mark_done = DingTalkUpdateStatusBarOperator(
        task_id="mark_done",
        task_ids="{{ ti.xcom_pull(task_ids='send_oa') }}",
        status_value="Done",
        status_bg="0xFF00AA00",
    )
    # [END howto_oa]

    # [START howto_raw_dict]
    send_raw = DingTalkMessageOperator(
        task_id="send_raw_dict",
        message={"msgtype": "text", "text": {"content": "Raw msg dict, run {{ run_id }}"}},
        userid_list=["user3"],
    )
    # [END howto_raw_dict]

    send_text >> send_markdown >> send_card >> send_oa >> mark_done >> send_raw
