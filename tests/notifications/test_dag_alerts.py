"""The alerts example DAG under ``dag.test()``: what its notifiers deliver, and what DingTalk down does.

The DAG has a mapped task that fails for one region, a task that fails once and succeeds on retry,
a templated success message and a DAG-level notifier (the case of apache/airflow#64649).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

DAG_ID = "example_dingtalk_alerts"
# Airflow 3.2 does not put the exception into a task's failure-callback context; the alert says so.
AIRFLOW_PASSES_ERRORS = Version(__import__("airflow").__version__) >= Version("3.3")
FAILURE_TEXT = (
    "RuntimeError: orders-south.csv is missing" if AIRFLOW_PASSES_ERRORS else "does not pass the error"
)
RETRY_TEXT = (
    "ConnectionError: the partner API timed out" if AIRFLOW_PASSES_ERRORS else "does not pass the error"
)
EXAMPLE = Path(__file__).parents[2] / "example_dags" / "example_dingtalk_alerts.py"


def run_example() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE))
    assert not bag.import_errors
    return bag.dags[DAG_ID].test()


def states(run: Any) -> dict[tuple[str, int], str]:
    return {
        (ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state))
        for ti in run.get_task_instances()
    }


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


EXPECTED_STATES = {
    ("load_orders", 0): "success",
    ("load_orders", 1): "failed",
    ("flaky_api", -1): "success",
    ("publish_report", -1): "success",
}


@pytest.mark.usefixtures("dingtalk_airflow_db")
def test_failures_retries_successes_and_the_dag_run_are_reported(dingtalk_airflow: DingTalkEmulator) -> None:
    run = run_example()
    assert str(getattr(run.state, "value", run.state)) == "failed"
    assert states(run) == EXPECTED_STATES
    robot = [d.message for d in dingtalk_airflow.inbox("custom_robot")]
    titles = [m.get("markdown", m.get("actionCard", {})).get("title") for m in robot]
    assert sorted(titles) == sorted(
        [
            "❌ Task failed: example_dingtalk_alerts.load_orders[1]",
            "🔁 Task up for retry: example_dingtalk_alerts.flaky_api",
            "Report published",
            f"Run {run.run_id} failed",
        ]
    )

    # The failure, in the group (with @user1) and as a work notification: every field a person needs.
    failure = next(m for m in robot if "load_orders[1]" in text_of(m))
    (work,) = dingtalk_airflow.inbox("work_notification")
    assert work.target == "user1"
    for message in (failure, work.message):
        text = text_of(message)
        for expected in (
            f"**DAG**: {DAG_ID}", "**Task**: load_orders", "**Map index**: 1", f"**Run**: {run.run_id}",
            "**Try**: 1 of 1", "**State**: failed", FAILURE_TEXT,
            "**Duration**: ", "**Host**: ", "View log", "/tasks/load_orders/mapped/1",
        ):  # fmt: skip
            assert expected in text, expected
    assert failure["at"]["atUserIds"] == ["user1"]

    # The retry (try 1 of 2), the templated success message and the DAG-level templated message.
    retry = next(m for m in robot if "up for retry" in text_of(m))
    assert "**Try**: 1 of 2" in text_of(retry) and RETRY_TEXT in text_of(retry)
    success = next(m for m in robot if m.get("markdown", {}).get("title") == "Report published")
    assert (
        success["markdown"]["text"] == f"✅ publish_report published the report for run {run.run_id} (try 1)."
    )
    dag_level = next(m for m in robot if m.get("markdown", {}).get("title") == f"Run {run.run_id} failed")
    assert dag_level["markdown"]["text"] == (
        f"### DAG {DAG_ID} failed\n\nRun `{run.run_id}`: task_failure. Someone please look."
    )


@pytest.mark.usefixtures("dingtalk_airflow_db")
def test_dingtalk_refusing_everything_changes_no_task_state(
    dingtalk_airflow: DingTalkEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    dingtalk_airflow.inject("/robot/send", errcode=300001, errmsg="token is not exist", times=100)
    dingtalk_airflow.inject(
        "/topapi/message/corpconversation/asyncsend_v2", errcode=40056, errmsg="invalid agentid", times=100
    )
    started = time.monotonic()
    run = run_example()
    elapsed = time.monotonic() - started
    assert str(getattr(run.state, "value", run.state)) == "failed"
    assert states(run) == EXPECTED_STATES
    assert dingtalk_airflow.inbox() == []
    out, err = capfd.readouterr()
    logged = out + err
    assert "errcode 300001" in logged and "errcode 40056" in logged
    assert elapsed < 60  # refusals are not retried; nothing waits for the timeout
