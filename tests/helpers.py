"""What several test modules share: a fast retry policy, a task callback's context, log capture, and
emptying the session's emulator. Fixtures built on these are in ``tests/conftest.py``.

Tests import from here (``from tests.helpers import FAST, fake_context``), never from another test module.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

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


def empty(emulator: DingTalkEmulator) -> None:
    """Forget everything a previous test did: requests, inbox, faults, tokens, per-endpoint data."""
    state = emulator.state
    with state.lock:
        state.requests.clear()
        state.inbox.clear()
        state.faults.clear()
        state.calls.clear()
        state.tokens.clear()
        state._stores.clear()
        state.clock.offset = 0.0


def listening(emulator: DingTalkEmulator) -> bool:
    """Whether the emulator still answers (a test may have stopped it to play DingTalk being down)."""
    if not emulator.url:
        return False
    address = urlsplit(emulator.url)
    try:
        with socket.create_connection((address.hostname or "", address.port or 0), timeout=1):
            return True
    except OSError:
        return False


def run_dag_file(source: str, dag_id: str, folder: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write ``source`` as a DAG file in ``folder`` (a user's DAG folder) and run it with ``dag.test()``.

    dag.test() serializes the DAG from its bundle, the DAG folder, which Airflow read into
    ``settings.DAGS_FOLDER`` at import: both are pointed at ``folder``. Needs the ``airflow_db`` fixture.
    """
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))
    (folder / f"{dag_id}.py").write_text(source)
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id].test()
