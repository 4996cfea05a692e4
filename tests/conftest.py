"""Test set-up: an isolated Airflow home, and the DingTalk emulator over real HTTP on loopback.

Environment variables are set before anything imports airflow (Airflow reads them at import).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="airflow-dingtalk-tests-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent.parent / "example_dags")
os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = os.path.join(_HOME, "dingtalk-state")

import pytest  # noqa: E402

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator  # noqa: E402

pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_token_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with empty token caches (memory and file), so call counts are its own."""
    from airflow_provider_dingtalk import token_cache

    monkeypatch.setenv("AIRFLOW_DINGTALK_STATE_DIR", str(tmp_path / "state"))
    token_cache._memory.clear()


@pytest.fixture
def airflow_db() -> None:
    """A migrated SQLite metadata DB, for tests that run DAGs (``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()


__all__ = ["DingTalkEmulator"]
