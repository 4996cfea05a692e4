"""The example DAG under dag.test(): the trigger runs in-process, the emulator decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.approvals.conftest import DEMO


def run_example() -> object:
    from airflow.dag_processing.dagbag import DagBag

    dag_file = Path(__file__).parents[2] / "example_dags" / "example_dingtalk_approval.py"
    dag = DagBag(dag_folder=str(dag_file)).get_dag("example_dingtalk_approval")
    assert dag is not None
    return dag.test()


@pytest.mark.parametrize(
    ("result", "ran", "skipped"),
    [("agree", "export", "tell_requester"), ("refuse", "tell_requester", "export")],
)
def test_example_branches_on_the_outcome(
    dingtalk_conn: DingTalkEmulator, dingtalk_airflow_db: None, result: str, ran: str, skipped: str
) -> None:
    dingtalk_conn.auto_decide(DEMO, result=result, after=0.5)
    run = run_example()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    assert run.state == "success" and states[ran] == "success" and states[skipped] == "skipped"  # type: ignore[attr-defined]
    (instance,) = dingtalk_conn.approval_instances()
    assert instance["result"] == result
    form = {v["name"]: v["value"] for v in instance["formComponentValues"]}
    assert form["Rows"] == "1200" and form['["Start","End"]'].startswith('["20')
    notices = dingtalk_conn.inbox("work_notification")
    assert bool(notices) == (result == "refuse")
