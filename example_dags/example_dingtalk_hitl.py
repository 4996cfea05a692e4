"""Human-in-the-loop answered from DingTalk: an approval and a branch choice, each as an interactive card.

The card goes one-to-one to the DingTalk users that the ``dingtalk_default`` connection's extra
``hitl_users`` maps to the task's ``assigned_users`` (and to the group in the Airflow Variable
``dingtalk_hitl_group``, if set). A tap on a button answers the task as an answer in Airflow's UI
would; anyone else who taps is told they are not an approver. Set-up (card template, callback
route, user map): docs/hitl.rst, "Approve from DingTalk". The approval's clicks come back over HTTP,
the branch choice's over Stream.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLBranchOperator
from airflow.sdk import DAG, task

from airflow_provider_dingtalk.notifications.hitl import DingTalkHITLNotifier

APPROVERS = [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}]

# [START howto_hitl_notifier]
card = DingTalkHITLNotifier(
    # card_template_id defaults to the connection's hitl_card_template_id
    open_conversation_id="{{ var.value.get('dingtalk_hitl_group', '') }}",
    callback_type="HTTP",  # clicks to <api base>/dingtalk/cards/callback (route: card_callback_route_key)
)
# [END howto_hitl_notifier]

# [START howto_hitl_notifier_stream]
# callback_type="STREAM", the default: clicks come down the API server's Stream connection, no public URL
stream_card = DingTalkHITLNotifier(open_conversation_id="{{ var.value.get('dingtalk_hitl_group', '') }}")
# [END howto_hitl_notifier_stream]

with DAG(
    dag_id="example_dingtalk_hitl",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk", "hitl", "demo:needs-scheduler"],  # someone must answer
):
    # [START howto_hitl_approval]
    approve = ApprovalOperator(
        task_id="approve_deploy",
        subject="Deploy {{ dag_run.run_id }} to production?",
        body="**Changes**: 3 tables, 12 columns.\n\nApprove to deploy now, reject to stop the run.",
        assigned_users=APPROVERS,
        notifiers=[card],
        fail_on_reject=True,
    )
    # [END howto_hitl_approval]

    @task
    def deploy() -> str:
        return "deployed"

    approve >> deploy()


with DAG(
    dag_id="example_dingtalk_hitl_branch",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "dingtalk", "hitl", "demo:needs-scheduler"],  # someone must answer
):
    choose = HITLBranchOperator(
        task_id="choose_region",
        subject="Which region loads today?",
        options=["load_eu", "load_us"],
        assigned_users=APPROVERS,
        notifiers=[stream_card],
    )

    @task
    def load_eu() -> str:
        return "eu"

    @task
    def load_us() -> str:
        return "us"

    choose >> [load_eu(), load_us()]
