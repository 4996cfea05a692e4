"""Test set-up: an isolated Airflow home, and the DingTalk emulator over real HTTP on loopback.

Environment variables are set before anything imports airflow (Airflow reads them at import).
Helpers that are not fixtures are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="airflow-dingtalk-tests-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent.parent / "example_dags")
os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = os.path.join(_HOME, "dingtalk-state")

import pytest  # noqa: E402

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator  # noqa: E402
from tests.helpers import Logs, empty, listening  # noqa: E402

pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]


@pytest.fixture(scope="session")
def _session_emulator() -> Iterator[DingTalkEmulator]:
    with DingTalkEmulator() as emulator:
        yield emulator


@pytest.fixture
def dingtalk_emulator(_session_emulator: DingTalkEmulator) -> DingTalkEmulator:
    """The plugin's fixture, but one emulator for the session, emptied before each test.

    Stopping a uvicorn server takes 0.2 s, and most tests take less than that; a test that stopped the
    emulator (DingTalk down) gets it restarted here, on a new port, before the next test reads ``url``.
    The receiver it hosts keeps its memory of handled events: tests push events of their own.
    """
    if not listening(_session_emulator):
        _session_emulator.start()
    empty(_session_emulator)
    return _session_emulator


@pytest.fixture(autouse=True)
def _fresh_token_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with empty token caches (memory and file), so call counts are its own."""
    from airflow_provider_dingtalk import token_cache

    monkeypatch.setenv("AIRFLOW_DINGTALK_STATE_DIR", str(tmp_path / "state"))
    token_cache._memory.clear()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Logs:
    return Logs(caplog, capfd)


@pytest.fixture
def robot_conn(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """``dingtalk_custom_robot_default`` → the emulator's signed robot "default"."""
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT",
        dingtalk_emulator.webhook_connection_json(robot, read_timeout=5),
    )
    return dingtalk_emulator


@pytest.fixture
def emulated(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """Every default connection id (app, custom robot, callback) → the emulator."""
    for name, value in dingtalk_emulator.airflow_env().items():
        monkeypatch.setenv(name, value)
    return dingtalk_emulator


@pytest.fixture
def airflow_db() -> None:
    """A migrated SQLite metadata DB, for tests that run DAGs (``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()


__all__ = ["DingTalkEmulator"]
