"""Test set-up: the shipped pytest plugin (an isolated Airflow home, one DingTalk emulator over real
HTTP on loopback, emptied between tests), plus fixtures of our own suite.

The plugin sets Airflow's environment in ``pytest_configure``, before anything imports airflow: this
file imports nothing that does. Helpers that are not fixtures are in ``tests/helpers.py``.
"""

from __future__ import annotations

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import Logs

pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_token_cache(dingtalk_fresh_token_cache: None) -> None:
    """Every test, with an emulator or not, starts with empty token caches, so call counts are its own."""


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


@pytest.fixture(autouse=True, scope="session")
def _isolated_airflow_home() -> None:
    """The suite never touches the machine's own Airflow: a conftest that imports Airflow at module level
    (before the plugin's set-up) once made every test run in ~/airflow with Airflow's example DAGs."""
    import os
    from pathlib import Path

    home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser().resolve()
    assert home != (Path.home() / "airflow").resolve(), "the session is using ~/airflow"
    from airflow import settings

    assert Path(settings.AIRFLOW_HOME).resolve() == home, "Airflow was imported before the plugin set up"
