"""The traceback in an alert shows the frames of the user's code, not Airflow's machinery around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import run_dag_file

# Airflow 3.2 does not pass the exception to a task's failure callback; there is no traceback to show.
pytestmark = pytest.mark.skipif(
    Version(__import__("airflow").__version__) < Version("3.3"), reason="no exception in callbacks"
)

DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier


def parse_header(path):
    raise ValueError(f"{path}: no header row")


with DAG(dag_id="my_pipeline", schedule=None, start_date=datetime(2025, 1, 1)):

    @task(on_failure_callback=DingTalkCustomRobotNotifier())
    def load():
        parse_header("orders.csv")

    @task(on_failure_callback=DingTalkCustomRobotNotifier())
    def check():
        raise RuntimeError("row count is 0")

    load()
    check()
"""


@pytest.mark.usefixtures("dingtalk_airflow_db")
def test_a_failed_tasks_alert_shows_the_users_frames(
    dingtalk_airflow: DingTalkEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dag_file(DAG_FILE, "my_pipeline", tmp_path, monkeypatch)
    alerts = {
        task: json.dumps(d.message, ensure_ascii=False).partition("Traceback (innermost last):")[2]
        for d in dingtalk_airflow.inbox("custom_robot")
        for task in ("load", "check")
        if f"my_pipeline.{task}" in json.dumps(d.message, ensure_ascii=False)
    }
    # The task's own function raised (the case where Airflow's frames filled the innermost three) ...
    assert "my_pipeline.py" in alerts["check"] and "in check" in alerts["check"]
    # ... and through a helper: every frame of the user's code is there.
    assert all(frame in alerts["load"] for frame in ("my_pipeline.py", "in load", "in parse_header"))
    for shown in alerts.values():
        for internal in (
            "python.py",
            "callback_runner.py",
            "task_runner.py",
            "decorator.py",
            "site-packages",
        ):
            assert internal not in shown, (internal, shown)
