"""Approvals and ChatOps over DingTalk Stream mode: no public URL, Airflow connects out to DingTalk.

``example_dingtalk_stream_approvals`` runs whenever an approval of one template finishes: the
triggerer holds a Stream connection for the ``dingtalk_default`` app and turns each
``bpms_instance_change`` event into an asset event (same asset and payload as the HTTP receiver).

``example_dingtalk_stream_chatops`` runs when someone @-mentions the app robot in a group, e.g.
"@bot rerun nightly_load", and reads who asked, where, and what.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_dingtalk.event_types import ROBOT_MESSAGE_ASSET_URI, event_asset_uri
from airflow_provider_dingtalk.triggers.stream import (
    DingTalkStreamEventTrigger,
    DingTalkStreamRobotMessageTrigger,
)

# [START howto_stream_approvals]
APPROVALS = Asset(
    event_asset_uri("bpms_instance_change"),  # dingtalk://events/bpms_instance_change
    watchers=[
        AssetWatcher(
            name="dingtalk_stream_approvals",
            trigger=DingTalkStreamEventTrigger(
                event_types=["bpms_instance_change"],
                filters={"processCode": "PROC-EXAMPLE", "type": "finish"},
            ),
        )
    ],
)

with DAG(
    dag_id="example_dingtalk_stream_approvals",
    schedule=[APPROVALS],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):

    @task
    def handle_approvals(*, triggering_asset_events: dict | None = None) -> list[str]:
        done = []
        for asset_event in (triggering_asset_events or {}).get(APPROVALS, []):
            approval = asset_event.extra.get("payload") or {}
            print(f"Approval {approval.get('processInstanceId')} finished: {approval.get('result')}")
            done.append(approval.get("processInstanceId"))
        return done

    handle_approvals()
# [END howto_stream_approvals]

# [START howto_stream_chatops]
ROBOT_MESSAGES = Asset(
    ROBOT_MESSAGE_ASSET_URI,
    watchers=[AssetWatcher(name="dingtalk_stream_robot", trigger=DingTalkStreamRobotMessageTrigger())],
)

with DAG(
    dag_id="example_dingtalk_stream_chatops",
    schedule=[ROBOT_MESSAGES],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk"],
):

    @task
    def read_commands(*, triggering_asset_events: dict | None = None) -> list[str]:
        commands = []
        for asset_event in (triggering_asset_events or {}).get(ROBOT_MESSAGES, []):
            message = asset_event.extra.get("payload") or {}
            print(f"{message.get('senderNick')} in {message.get('conversationId')}: {message.get('content')}")
            commands.append(message.get("content", ""))
        return commands

    read_commands()
# [END howto_stream_chatops]
