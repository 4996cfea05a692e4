"""What several test modules share: a fast retry policy, a task callback's context, log capture.
Fixtures are in ``tests/conftest.py`` and the shipped pytest plugin.

Tests import from here (``from tests.helpers import FAST, fake_context``), never from another test module.
"""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_dingtalk.retry import RetryPolicy

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10)
"""The default policy's retries with waits of milliseconds, so a retried test takes no real time."""

LOG_URL = "http://airflow.example.com/dags/etl/runs/r1/tasks/load?try_number=2"


def fake_context(
    *,
    task_id: str = "load",
    run_id: str = "manual__r1",
    exception: BaseException | str | None = None,
    **ti: Any,
) -> dict[str, Any]:
    """What a task's on_failure_callback receives (the parts the alert reads)."""
    start = dt.datetime(2025, 1, 1, 3, 0, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "dag_id": "etl",
        "task_id": task_id,
        "run_id": run_id,
        "map_index": 3,
        "try_number": 2,
        "max_tries": 2,
        "state": "failed",
        "start_date": start,
        "end_date": start + dt.timedelta(seconds=42.5),
        "hostname": "worker-7",
        "log_url": LOG_URL,
        **ti,
    }
    instance = SimpleNamespace(**fields)
    return {"ti": instance, "task_instance": instance, "run_id": run_id, "exception": exception}


class Logs:
    """Everything logged: stdlib records and structlog's lines (Airflow's LoggingMixin prints those)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        self.caplog, self.capfd, self.printed = caplog, capfd, ""

    @property
    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.printed += out + err
        return self.caplog.text + self.printed
