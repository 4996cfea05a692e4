"""The approval example on real Airflow services: the task defers, the triggerer's poller waits, an
approver agrees in DingTalk (the emulator), and the run finishes through the export branch."""

from __future__ import annotations

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_services import AirflowServices, wait_for

pytestmark = pytest.mark.production
DAG_ID = "example_dingtalk_approval"


def test_approval_waits_on_the_triggerer_and_finishes_on_agree(
    airflow_services: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    airflow_services.unpause(DAG_ID)
    before = {i["instanceId"] for i in production_emulator.approval_instances()}
    (run_id,) = airflow_services.trigger(DAG_ID).values()

    def deferred() -> bool:
        tis = airflow_services.task_instances(DAG_ID, run_id)
        return tis[("data_owner_approval", -1)]["state"] == "deferred"

    # deferred: the trigger was serialised and the triggerer runs it
    wait_for("approval task deferred", deferred, timeout=120, logs=airflow_services.logs)
    (instance,) = [i for i in production_emulator.approval_instances() if i["instanceId"] not in before]
    production_emulator.approve(instance["instanceId"], "user2", "export approved")
    run = airflow_services.wait_for_run(DAG_ID, run_id, timeout=120)
    assert run["state"] == "success", airflow_services.explain(DAG_ID, run_id)
    states = {task: ti["state"] for (task, _), ti in airflow_services.task_instances(DAG_ID, run_id).items()}
    assert states["export"] == "success" and states["tell_requester"] == "skipped"
    outcome = airflow_services.xcom(DAG_ID, run_id, "data_owner_approval")
    assert outcome["outcome"] == "agree" and outcome["remarks"] == ["export approved"]
