"""Real Airflow services, started once per test session with a default configuration.

Only what a user must set: an Airflow home, the dags folder (``example_dags/``), no bundled
examples, the API server's port and ``[api] base_url``, a small ``parallelism`` for this 2-core
machine, token-less REST calls (``simple_auth_manager_all_admins``) and the DingTalk connections
as ``AIRFLOW_CONN_*`` variables pointing at the emulator, which runs in this test process. Nothing
else (lazy provider discovery stays on), so the tests see what a default install does.

``airflow db migrate``, then ``airflow api-server``, ``scheduler``, ``dag-processor`` and
``triggerer`` as separate processes, each in its own process group (stopping a group stops the
workers it forked). Logs are kept in the Airflow home and printed when a test failed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import DEMO_TEMPLATE_ID
from tests.airflow_services import AirflowServices, wait_for
from tests.services import free_port

__all__ = ["AirflowServices", "airflow_services", "production_emulator", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent.parent
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
EXAMPLE_DAGS = (
    "example_dingtalk_alerts",
    "example_dingtalk_approval",
    "example_dingtalk_deadline",
    "example_dingtalk_hitl",
    "example_dingtalk_hitl_branch",
    "example_dingtalk_on_approval",
    "example_dingtalk_register_callback",
    "example_dingtalk_robot",
    "example_dingtalk_stream_approvals",
    "example_dingtalk_stream_chatops",
    "example_dingtalk_work_notification",
)
STARTUP_TIMEOUT = 120.0
# Human-in-the-loop cards (tests/hitl): who is who, the card callback's route and secret, the group.
HITL_USERS = {"user1": "alice", "user2": "bob", "user3": "carol"}  # carol is mapped but not assigned
CARD_ROUTE_KEY = "airflow-hitl"
CARD_API_SECRET = "hitl-card-api-secret-0123456789"
HITL_GROUP = "cidhitlgroup"


def _service_env(home: Path, port: int, emulator: DingTalkEmulator) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}"
    # The test session's own Airflow settings (unit-test mode, its home) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    callback = {**emulator.receiver.connection(), "host": url + "/dingtalk/events"}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(port),
            # Tasks reach the execution API through base_url: without it, localhost:8080.
            "AIRFLOW__API__BASE_URL": url,
            # The provider's token cache and handled-event store: by default one folder per OS user,
            # shared with every other test session on the machine (and their emulators' tokens).
            "AIRFLOW_DINGTALK_STATE_DIR": str(home / "dingtalk-state"),
            **emulator.airflow_env(),
            "AIRFLOW_CONN_DINGTALK_DEFAULT": emulator.connection_json(
                hitl_users=HITL_USERS,
                hitl_card_template_id=DEMO_TEMPLATE_ID,
                card_callback_route_key=CARD_ROUTE_KEY,
                card_callback_api_secret=CARD_API_SECRET,
            ),
            "AIRFLOW_VAR_DINGTALK_HITL_GROUP": HITL_GROUP,
            # DingTalk pushes to the plugin on the API server, not to the emulator's own receiver.
            "AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT": json.dumps(callback),
        }
    )
    return env


@pytest.fixture(scope="session")
def production_emulator() -> Iterator[DingTalkEmulator]:
    """One emulator for the whole session: the services hold connections that point at it."""
    with DingTalkEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def airflow_services(
    production_emulator: DingTalkEmulator,
    request: pytest.FixtureRequest,
) -> Iterator[AirflowServices]:
    # Not under pytest's basetemp: other pytest sessions on the machine prune it, logs included.
    home = Path(tempfile.mkdtemp(prefix="airflow-production-"))
    port = free_port()
    services = AirflowServices(
        home, _service_env(home, port, production_emulator), f"http://127.0.0.1:{port}"
    )
    started = time.monotonic()
    services.cli("db", "migrate", timeout=300)
    for name in SERVICES:
        services.start(name, *(("--host", "127.0.0.1", "--port", str(port)) if name == "api-server" else ()))
    try:
        services.wait_healthy(
            ("metadatabase", "scheduler", "triggerer", "dag_processor"), timeout=STARTUP_TIMEOUT
        )
        services.wait_parsed(EXAMPLE_DAGS, timeout=STARTUP_TIMEOUT)
        services.startup_seconds = time.monotonic() - started
        yield services
    finally:
        services.finish(request)
