"""Event callbacks: register the organisation's callback, and run a DAG whenever an approval finishes.

``example_dingtalk_register_callback`` tells DingTalk where to push approval events. The URL, token
and aes_key come from the ``dingtalk_callback_default`` connection, which the receiver on Airflow's
API server (``/dingtalk/events``) reads too; DingTalk accepts the registration only after that
receiver answered its encrypted ``check_url``.

``example_dingtalk_on_approval`` is scheduled on the asset the receiver updates for every
``bpms_instance_change`` event; its task reads the approval from the triggering asset events.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset, task

from airflow_provider_dingtalk.event_types import event_asset_uri
from airflow_provider_dingtalk.operators.callback import (
    DingTalkCallbackFailedResultOperator,
    DingTalkGetCallbackOperator,
    DingTalkRegisterCallbackOperator,
)

with DAG(
    dag_id="example_dingtalk_register_callback",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):
    # [START howto_register_callback]
    register = DingTalkRegisterCallbackOperator(
        task_id="register_callback",
        call_back_tags=["bpms_instance_change", "bpms_task_change"],
        # url, token and aes_key default to the dingtalk_callback_default connection
    )
    # [END howto_register_callback]

    # [START howto_get_callback]
    show = DingTalkGetCallbackOperator(task_id="show_callback")  # token and aes_key come back as ***
    missed = DingTalkCallbackFailedResultOperator(task_id="undelivered_events")
    # [END howto_get_callback]

    register >> show >> missed


# [START howto_on_approval]
APPROVALS = Asset(event_asset_uri("bpms_instance_change"))  # dingtalk://events/bpms_instance_change

with DAG(
    dag_id="example_dingtalk_on_approval",
    schedule=[APPROVALS],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):

    @task
    def handle_approvals(*, triggering_asset_events: dict | None = None) -> list[str]:
        done = []
        for asset_event in (triggering_asset_events or {}).get(APPROVALS, []):
            approval = asset_event.extra.get("payload") or {}  # events made by hand have none
            if approval.get("type") == "finish":
                print(f"Approval {approval['processInstanceId']} finished: {approval.get('result')}")
                done.append(approval["processInstanceId"])
        return done

    handle_approvals()
# [END howto_on_approval]
