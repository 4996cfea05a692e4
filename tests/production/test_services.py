"""The production path: real Airflow services (see conftest.py), DAGs run the way users run them.

Every example DAG is triggered by hand with ``airflow dags trigger`` on the running scheduler (a
manual run: no logical date), and what it did is checked at the emulator. The event receiver is the
plugin on the default API server: DingTalk's ``check_url`` handshake passes through it, and a pushed
event becomes an asset event that starts the consumer DAG via the scheduler. A Deadline Alert fires
through the triggerer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk.crypto import new_nonce
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_services import AirflowServices, wait_for

pytestmark = pytest.mark.production

MANUAL = (
    "example_dingtalk_register_callback",
    "example_dingtalk_robot",
    "example_dingtalk_work_notification",
    "example_dingtalk_alerts",
    "example_dingtalk_deadline",
)
CONSUMER = "example_dingtalk_on_approval"
RUN_TIMEOUT = 150.0


class ManualRuns:
    def __init__(self, run_ids: dict[str, str], triggered_at: float) -> None:
        self.run_ids, self.triggered_at = run_ids, triggered_at


@pytest.fixture(scope="module")
def manual_runs(airflow_services: AirflowServices) -> Iterator[ManualRuns]:
    """Every example DAG with no schedule, unpaused and triggered by hand at once (they run side by side)."""
    for dag_id in (*MANUAL, CONSUMER):
        airflow_services.unpause(dag_id)
    started = time.monotonic()
    yield ManualRuns(airflow_services.trigger(*MANUAL), started)


def finished(services: AirflowServices, runs: ManualRuns, dag_id: str) -> dict[str, Any]:
    return services.wait_for_run(dag_id, runs.run_ids[dag_id], timeout=RUN_TIMEOUT)


def texts(emulator: DingTalkEmulator, channel: str) -> list[str]:
    """Every delivered message of ``channel`` as one string (its JSON body), to search in."""
    import json

    return [json.dumps(d.message, ensure_ascii=False) for d in emulator.inbox(channel)]


# -- the plugin on a default API server ------------------------------------------------------------


def test_event_receiver_is_mounted_on_the_default_api_server(airflow_services: AirflowServices) -> None:
    resp = requests.post(airflow_services.url + "/dingtalk/events", json={"encrypt": "x"}, timeout=30)
    # Not 405 (the UI's catch-all answering for an unmounted path): the receiver refuses the unsigned push.
    assert resp.status_code in (400, 403), (resp.status_code, resp.text)


def test_registration_check_url_passes_through_the_api_server(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    dag_id = "example_dingtalk_register_callback"
    run = finished(airflow_services, manual_runs, dag_id)
    assert run["state"] == "success", airflow_services.explain(dag_id, run["dag_run_id"])
    assert run["run_type"] == "manual"
    shown = airflow_services.xcom(dag_id, run["dag_run_id"], "show_callback")
    assert shown["url"] == airflow_services.url + "/dingtalk/events"
    # DingTalk registers a URL only after its encrypted check_url was answered with an encrypted
    # "success"; the emulator logged the handshake it sent to the API server.
    handshakes = [r for r in production_emulator.requests() if r.path.endswith("register_call_back")]
    assert len(handshakes) == 1


def test_pushed_event_starts_the_consumer_dag_via_the_scheduler(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    run = finished(airflow_services, manual_runs, "example_dingtalk_register_callback")
    assert run["state"] == "success"
    event = {
        "EventType": "bpms_instance_change",
        "processInstanceId": f"prod-{new_nonce(8)}",
        "type": "finish",
        "result": "agree",
    }
    assert production_emulator.push_event(event)  # acknowledged by the plugin with an encrypted "success"

    def consumer_run() -> dict[str, Any] | None:
        airflow_services.check_alive()
        runs = airflow_services.get(f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    def state() -> str:
        events = airflow_services.get("/api/v2/assets/events")["asset_events"]
        runs = airflow_services.get(f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]
        return f"asset events: {events}\nconsumer runs: {runs}\n{airflow_services.logs()}"

    consumer = wait_for("the consumer DAG's run", consumer_run, timeout=RUN_TIMEOUT, logs=state)
    assert consumer["run_type"] == "asset_triggered"
    assert consumer["state"] == "success", airflow_services.logs()
    done = airflow_services.xcom(CONSUMER, consumer["dag_run_id"], "handle_approvals")
    assert done == [event["processInstanceId"]]


# -- every example DAG, triggered by hand ----------------------------------------------------------


def test_robot_example_on_a_manual_run(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    dag_id = "example_dingtalk_robot"
    run = finished(airflow_services, manual_runs, dag_id)
    assert run["logical_date"] is None  # what a manual run is in Airflow 3
    assert run["state"] == "success", airflow_services.explain(dag_id, run["dag_run_id"])
    day = datetime.fromisoformat(run["run_after"]).strftime("%Y-%m-%d")
    robot = texts(production_emulator, "custom_robot")
    assert any(f"Nightly load {day}" in t and "rows: **1,024**" in t for t in robot)
    assert any(f"Run {run['dag_run_id']}" in t for t in robot)  # the ActionCard
    group = texts(production_emulator, "app_robot_group")
    assert any(f"Nightly load {day} finished." in t for t in group)
    direct = [d.target for d in production_emulator.inbox("app_robot_oto")]
    assert {"user1", "user2"} <= set(direct)


def test_work_notification_example_waits_for_delivery_on_the_triggerer(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    dag_id = "example_dingtalk_work_notification"
    run = finished(airflow_services, manual_runs, dag_id)
    run_id = run["dag_run_id"]
    assert run["state"] == "success", airflow_services.explain(dag_id, run_id)
    sent = texts(production_emulator, "work_notification")
    for snippet in (
        f"Nightly load finished ({run_id})",  # send_text
        f"- run: `{run_id}`",  # send_markdown
        f"Release **{run_id}** is ready.",  # send_action_card
        f"https://example.com/runs/{run_id}",  # send_oa
        f"Raw msg dict, run {run_id}",  # send_raw_dict
    ):
        assert any(snippet in t for t in sent), snippet
    # The ActionCard's delivery wait ran deferred: the task handed it to the triggerer, whose trigger
    # fired, and resumed; the task's log in Airflow (the UI's view) shows both sides.
    log = airflow_services.task_log(dag_id, run_id, "send_action_card")
    assert "DEFERRED" in log, log
    assert "send_action_card/-1/1" in log and "Trigger fired event" in log, log


def test_alerts_example_reports_failures_and_retries(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    dag_id = "example_dingtalk_alerts"
    run = finished(airflow_services, manual_runs, dag_id)
    run_id = run["dag_run_id"]
    assert run["state"] == "failed"  # load_orders["south"] fails: what the example shows
    tis = airflow_services.task_instances(dag_id, run_id)
    assert tis[("load_orders", 1)]["state"] == "failed"
    assert tis[("flaky_api", -1)]["state"] == "success"
    assert tis[("publish_report", -1)]["state"] == "success"

    def all_alerts() -> list[str] | None:
        robot = [t for t in texts(production_emulator, "custom_robot") if run_id in t or dag_id in t]
        wanted = (
            f"Run {run_id} failed",  # the DAG-level notifier (runs in the dag processor)
            "orders-south.csv is missing",  # the failed mapped task's alert
            "✅ publish_report published the report",  # on_success_callback
        )
        return robot if all(any(w in t for t in robot) for w in wanted) else None

    wait_for("the alerts at the custom robot", all_alerts, timeout=60, logs=airflow_services.logs)
    assert any(d.target == "user1" for d in production_emulator.inbox("work_notification"))


def test_deadline_alert_fires_through_the_triggerer_with_the_dags_context(
    airflow_services: AirflowServices, manual_runs: ManualRuns, production_emulator: DingTalkEmulator
) -> None:
    dag_id = "example_dingtalk_deadline"
    run = finished(airflow_services, manual_runs, dag_id)
    assert run["state"] == "success"
    run_id = run["dag_run_id"]

    def alert() -> str | None:
        failed = "An error occurred during execution of the callable"
        triggerer_log = airflow_services.log_path("triggerer").read_text(errors="replace")
        if failed in triggerer_log:
            at = triggerer_log.index(failed)
            raise AssertionError(
                f"the Deadline callback failed on the triggerer:\n{triggerer_log[at : at + 3000]}"
            )
        late = [t for t in texts(production_emulator, "custom_robot") if "Deadline missed" in t]
        return late[0] if late else None

    message = wait_for(
        "the Deadline Alert at the custom robot", alert, timeout=60, logs=airflow_services.logs
    )
    assert f"Deadline missed: {dag_id}" in message
    assert f"Run `{run_id}` was queued" in message
