"""Pytest fixtures for testing DAGs that use this provider, against the DingTalk emulator.

Enable in your ``conftest.py``::

    pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]

then take ``dingtalk_emulator`` (a running :class:`DingTalkEmulator`) and ``dingtalk_conn``
(``dingtalk_default`` pointed at it) in your tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator


@pytest.fixture
def dingtalk_emulator() -> Iterator[DingTalkEmulator]:
    """A fresh emulator per test, on a free loopback port."""
    with DingTalkEmulator() as emulator:
        yield emulator


@pytest.fixture
def dingtalk_conn(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """Point the ``dingtalk_default`` connection at the emulator (short timeouts for fast tests)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_DEFAULT",
        dingtalk_emulator.connection_json(connect_timeout=2, read_timeout=5),
    )
    return dingtalk_emulator
