"""Pytest fixtures for testing your own DAGs against the DingTalk emulator.

Enable it in your ``conftest.py`` (it is not loaded by merely installing the provider)::

    pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]

Fixtures:

``dingtalk_emulator``
    One :class:`DingTalkEmulator` for the whole session, emptied (:meth:`~DingTalkEmulator.reset`)
    before each test and started again if a test stopped it. Read what your code sent with
    ``inbox()``, ``requests()``, ``tasks()`` and ``uploads()``.
``dingtalk_airflow``
    The same emulator, with every default connection pointed at it (``dingtalk_default``,
    ``dingtalk_custom_robot_default``, ``dingtalk_callback_default``) and a migrated metadata
    database, so that ``dag.test()`` runs.
``dingtalk_conn``
    Only ``dingtalk_default`` pointed at the emulator (short timeouts), no database.

Unless ``dingtalk_isolated_airflow = false`` is set in the pytest ini options, the plugin gives the
session its own ``AIRFLOW_HOME`` (a temporary directory: a SQLite database there, never yours) with
``load_examples`` off, before Airflow is imported. ``dingtalk_dags_folder`` (relative to the ini file)
sets ``[core] dags_folder`` for DAG bags and ``airflow dags`` commands.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

_HOME = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "dingtalk_isolated_airflow",
        "give the session its own temporary AIRFLOW_HOME (default: true)",
        type="bool",
        default=True,
    )
    parser.addini("dingtalk_dags_folder", "[core] dags_folder for the session, relative to the ini file")


def pytest_configure(config: pytest.Config) -> None:
    dags = config.getini("dingtalk_dags_folder")
    if dags:
        base = config.inipath.parent if config.inipath else config.rootpath
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(base, dags).resolve())
    if not config.getini("dingtalk_isolated_airflow"):
        return
    if "airflow" in sys.modules:
        # Airflow read AIRFLOW_HOME when it was imported: changing it now would split the session
        # between two homes. Say so, since the session now uses the home Airflow read.
        warnings.warn(
            "airflow was imported before the DingTalk pytest plugin was configured, so the plugin "
            "cannot give the session its own AIRFLOW_HOME: list the plugin in pytest_plugins of your "
            "top conftest.py and import airflow only inside tests or fixtures",
            stacklevel=1,
        )
        return
    home = tempfile.mkdtemp(prefix="airflow-dingtalk-tests-")
    config.stash[_HOME] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = os.path.join(home, "dingtalk-state")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _HOME in config.stash:
        shutil.rmtree(config.stash[_HOME], ignore_errors=True)


@pytest.fixture
def dingtalk_fresh_token_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty access-token caches (memory, and a file cache of the test's own) for one test.

    The emulator forgets its tokens on every reset; a token cached by an earlier test would cost
    a rejected call and a renewal, and make call counts depend on test order.
    """
    from airflow_provider_dingtalk import token_cache

    monkeypatch.setenv("AIRFLOW_DINGTALK_STATE_DIR", str(tmp_path / "dingtalk-state"))
    token_cache.forget_memory()


@pytest.fixture(scope="session")
def _dingtalk_session_emulator() -> Iterator[DingTalkEmulator]:
    with DingTalkEmulator() as emulator:
        yield emulator


@pytest.fixture
def dingtalk_emulator(
    _dingtalk_session_emulator: DingTalkEmulator, dingtalk_fresh_token_cache: None
) -> DingTalkEmulator:
    """The session's emulator, emptied; started again (on a new port) if a test stopped it.

    Starting and stopping a server takes 0.2 s, longer than most tests: one per session is shared.
    """
    emulator = _dingtalk_session_emulator
    if not emulator.running:
        emulator.start()
    emulator.reset()
    return emulator


@pytest.fixture
def dingtalk_conn(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """Point the ``dingtalk_default`` connection at the emulator (short timeouts for fast tests)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_DEFAULT",
        dingtalk_emulator.connection_json(connect_timeout=2, read_timeout=5),
    )
    return dingtalk_emulator


@pytest.fixture(scope="session")
def dingtalk_airflow_db() -> None:
    """A migrated metadata database (``airflow db migrate``), once per session."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture
def dingtalk_airflow(
    dingtalk_emulator: DingTalkEmulator, dingtalk_airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DingTalkEmulator:
    """Every default connection (app, custom robot "default", callback) → the emulator, and a
    migrated database: what ``dag.test()`` of a DAG that talks to DingTalk needs."""
    for name, value in dingtalk_emulator.airflow_env().items():
        monkeypatch.setenv(name, value)
    return dingtalk_emulator
