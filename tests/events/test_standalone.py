"""The standalone receiver (``dingtalk-event-receiver``) against a real Airflow API server.

DingTalk (the emulator) → standalone receiver → Airflow's public REST API → asset event → the example
DAG scheduled on it is queued. Most tests serve Airflow's API app in this process (creating it takes
about 5 s, so once per module, with ``simple_auth_manager_all_admins``); one test starts
``airflow api-server`` and the ``dingtalk-event-receiver`` console script as real processes, with a
username/password user whose JWTs expire after a second, so logging in and renewing are exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.crypto import new_nonce
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_state import APPROVALS_URI, CONSUMER, reset_approvals

EXAMPLES = Path(__file__).parent.parent.parent / "example_dags" / "example_dingtalk_callbacks.py"
TAGS = ["bpms_instance_change", "user_add_org"]


def approval(instance: str) -> dict[str, Any]:
    return {
        "EventType": "bpms_instance_change",
        "processInstanceId": instance,
        "type": "finish",
        "result": "agree",
    }


def serialize_example_dags() -> None:
    """Write the callback example DAGs (and the asset they use) to the DB, as the dag processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()  # type: ignore[no-untyped-call]
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle("dags-folder")
    bundle.initialize()
    bag = BundleDagBag(dag_folder=str(EXAMPLES), bundle_path=bundle.path, bundle_name=bundle.name)
    assert not bag.import_errors
    sync_bag_to_db(bag, bundle.name, None)


class Airflow:
    """Airflow's public REST API, as the test reads it."""

    def __init__(self, url: str, auth: Callable[[], dict[str, str]] = dict) -> None:
        self.url, self.auth = url, auth

    def get(self, path: str, **params: Any) -> Any:
        resp = requests.get(self.url + path, params=params, headers=self.auth(), timeout=10)
        resp.raise_for_status()
        return resp.json()

    def unpause(self, dag_id: str) -> None:
        resp = requests.patch(
            f"{self.url}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=self.auth(), timeout=10
        )
        resp.raise_for_status()

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        assets = self.get("/api/v2/assets", uri_pattern=uri)["assets"]
        (asset,) = [a for a in assets if a["uri"] == uri]
        return list(self.get("/api/v2/assets/events", asset_id=asset["id"])["asset_events"])

    def queued_dags(self, dag_id: str) -> list[str]:
        resp = requests.get(
            f"{self.url}/api/v2/dags/{dag_id}/assets/queuedEvents", headers=self.auth(), timeout=10
        )
        if resp.status_code == 404:  # nothing queued
            return []
        resp.raise_for_status()
        return [q["dag_id"] for q in resp.json()["queued_events"]]


@pytest.fixture(scope="module")
def airflow_api() -> Iterator[Airflow]:
    """Airflow's API app in this process: migrated SQLite DB, example DAGs, all-admins auth."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from airflow.utils.db import initdb

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        initdb()
        serialize_example_dags()
        reset_approvals()
        purge_cached_app()
        try:
            with ThreadedServer(create_app(), name="airflow-api") as server:
                api = Airflow(server.url)
                api.unpause(CONSUMER)
                yield api
        finally:
            purge_cached_app()
            reset_approvals()


def callback_conn(corp_id: str, url: str = "") -> tuple[str, dict[str, str]]:
    """A ``dingtalkcallback`` connection (env var JSON) with fresh keys, and the keys."""
    keys = {"token": new_nonce(16), "aes_key": new_nonce(43)}
    conn = {
        "conn_type": "dingtalkcallback",
        "host": url,
        "login": corp_id,
        "password": keys["aes_key"],
        "extra": {"token": keys["token"]},
    }
    return json.dumps(conn), keys


def register(url: str, keys: dict[str, str]) -> None:
    """Register ``url`` with the emulated DingTalk: its check_url handshake must reach the receiver."""
    from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

    DingTalkCallbackHook().register_callback(call_back_tags=TAGS, url=url, **keys)


@pytest.fixture
def standalone(
    airflow_api: Airflow, dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The standalone receiver (built as the console script builds it), registered at DingTalk."""
    from airflow_provider_dingtalk.events.cli import build_receiver

    conn, keys = callback_conn(dingtalk_conn.app.corp_id)
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", conn)
    app = build_receiver(airflow_url=airflow_api.url, state_file=tmp_path / "seen.sqlite3")
    with ThreadedServer(app, name="standalone-receiver") as server:
        url = server.url + "/dingtalk/events"
        register(url, keys)
        yield url


def test_event_becomes_one_asset_event_and_queues_the_dag(
    standalone: str, airflow_api: Airflow, dingtalk_conn: DingTalkEmulator
) -> None:
    before = len(airflow_api.asset_events(APPROVALS_URI))
    event = approval(f"p-{new_nonce(6)}")
    started = time.monotonic()
    assert dingtalk_conn.push_event(event)  # acknowledged within DingTalk's 1.5 s, asset event written
    latency = time.monotonic() - started
    assert dingtalk_conn.push_event(event)  # DingTalk's retry: acknowledged, not recorded again

    events = airflow_api.asset_events(APPROVALS_URI)
    mine = [e for e in events if e["extra"]["payload"] == event]
    assert len(events) == before + 1
    assert len(mine) == 1
    assert mine[0]["extra"]["event_type"] == "bpms_instance_change"
    assert mine[0]["extra"]["source"] == "dingtalk"
    assert mine[0]["extra"]["from_rest_api"] is True  # it came through the public API
    assert airflow_api.queued_dags(CONSUMER) == [CONSUMER]
    assert latency < 1.5


def test_event_type_no_dag_is_scheduled_on_is_acknowledged_and_dropped(
    standalone: str, airflow_api: Airflow, dingtalk_conn: DingTalkEmulator
) -> None:
    assert dingtalk_conn.push_event({"EventType": "user_add_org", "UserId": ["user1"]})
    assets = airflow_api.get("/api/v2/assets", uri_pattern="dingtalk://events/user_add_org")["assets"]
    assert assets == []
    from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

    assert DingTalkCallbackHook().get_callback_failed_results() == []


def test_airflow_unreachable_is_503_and_dingtalk_keeps_the_event(
    airflow_api: Airflow, dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_provider_dingtalk.events.cli import build_receiver
    from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

    conn, keys = callback_conn(dingtalk_conn.app.corp_id)
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", conn)
    dead_url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    seen = tmp_path / "seen.sqlite3"
    event = approval(f"p-{new_nonce(6)}")
    before = len(airflow_api.asset_events(APPROVALS_URI))
    with ThreadedServer(build_receiver(airflow_url=dead_url, state_file=seen)) as server:
        register(server.url + "/dingtalk/events", keys)
        assert not dingtalk_conn.push_event(event)
    failed = DingTalkCallbackHook().get_callback_failed_results()
    assert [f["processInstanceId"] for f in failed] == [event["processInstanceId"]]
    # The receiver did not remember the event: once Airflow is back, DingTalk's retry goes through.
    with ThreadedServer(build_receiver(airflow_url=airflow_api.url, state_file=seen)) as server:
        register_url = server.url + "/dingtalk/events"
        DingTalkCallbackHook().update_callback(call_back_tags=TAGS, url=register_url, **keys)
        assert dingtalk_conn.push_event(event)
    assert len(airflow_api.asset_events(APPROVALS_URI)) == before + 1


def test_missing_connection_fails_at_start_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_dingtalk.events.cli import main

    assert main(["--airflow-url", "http://127.0.0.1:9", "--callback-conn-id", "no_such_callback"]) == 2
    assert "no_such_callback" in capsys.readouterr().out


def test_username_without_password_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dingtalk.events.cli import PASSWORD_ENV, main

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert main(["--airflow-url", "http://127.0.0.1:9", "--username", "alice"]) == 2
    assert PASSWORD_ENV in capsys.readouterr().out


# -- real processes: airflow api-server + dingtalk-event-receiver ---------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until ``url`` answers anything over HTTP."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return time.monotonic() - started
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def login(base: str, username: str, password: str) -> dict[str, str]:
    """Log in at ``POST /auth/token`` as a REST client does; the Authorization header."""
    resp = requests.post(base + "/auth/token", json={"username": username, "password": password}, timeout=30)
    assert resp.status_code == 201
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Own process group: stopping it stops uvicorn's children too.
    return subprocess.Popen(
        args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_console_script_against_airflow_api_server_with_a_login(
    dingtalk_conn: DingTalkEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.db import initdb

    initdb()  # the test session's SQLite DB, shared with the api-server process
    serialize_example_dags()
    reset_approvals()
    bindir = Path(sys.executable).parent
    password = new_nonce(20)
    tester_password = new_nonce(20)
    (tmp_path / "passwords.json").write_text(json.dumps({"receiver": password, "tester": tester_password}))
    (tmp_path / "password").write_text(password + "\n")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "receiver:op,tester:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
        # JWTs live 1–2 s (whole seconds), so the receiver must renew its login.
        "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": "2",
        "AIRFLOW__API_AUTH__JWT_LEEWAY": "0",
        "AIRFLOW__API__BASE_URL": base,
        # For the scheduler's task processes: the execution API on this server, and its JWTs.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": base + "/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": new_nonce(64),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
    }
    api_log = tmp_path / "api-server.log"
    api = _start([str(bindir / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
                 server_env, api_log)  # fmt: skip
    receiver = scheduler = None
    try:
        startup = _wait_http(base + "/api/v2/monitor/health", api, timeout=60)
        airflow = Airflow(base, lambda: login(base, "tester", tester_password))  # a login per call
        assert requests.get(base + "/api/v2/assets", timeout=30).status_code == 401  # no token-less calls

        conn, keys = callback_conn(dingtalk_conn.app.corp_id)
        rport = _free_port()
        receiver_env = {**os.environ, "AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT": conn}
        receiver = _start(
            [
                str(bindir / "dingtalk-event-receiver"),
                "--port", str(rport),
                "--airflow-url", base,
                "--username", "receiver",
                "--password-file", str(tmp_path / "password"),
                "--state-file", str(tmp_path / "seen.sqlite3"),
            ],
            receiver_env,
            tmp_path / "receiver.log",
        )  # fmt: skip
        receiver_url = f"http://127.0.0.1:{rport}/dingtalk/events"
        receiver_startup = _wait_http(receiver_url, receiver, timeout=30)
        register(receiver_url, keys)

        # The first asset event after the server started takes it ~1.4 s (cold code paths); make it
        # here, as an approval that did not finish, and clear the queue entry it made.
        (asset,) = airflow.get("/api/v2/assets", uri_pattern=APPROVALS_URI)["assets"]
        warm_up = {"asset_id": asset["id"], "extra": {"payload": {"processInstanceId": "w", "type": "start"}}}
        warm = requests.post(base + "/api/v2/assets/events", json=warm_up, headers=airflow.auth(), timeout=30)
        assert warm.status_code == 200
        cleared = requests.delete(
            f"{base}/api/v2/dags/{CONSUMER}/assets/queuedEvents", headers=airflow.auth(), timeout=30
        )
        assert cleared.status_code == 204
        airflow.unpause(CONSUMER)

        first, second = approval("p-first"), approval("p-second")
        started = time.monotonic()
        assert dingtalk_conn.push_event(first)  # logs in at /auth/token
        latency = time.monotonic() - started
        assert dingtalk_conn.push_event(first)  # redelivered: no second asset event
        time.sleep(3.1)  # the receiver's JWT has expired
        assert dingtalk_conn.push_event(second)  # 401 → logs in again → recorded

        payloads = [e["extra"]["payload"] for e in airflow.asset_events(APPROVALS_URI)]
        assert payloads.count(first) == 1
        assert payloads.count(second) == 1
        assert airflow.queued_dags(CONSUMER) == [CONSUMER]

        # The scheduler turns the queue into one run of the consumer DAG, whose task reads the events.
        started = time.monotonic()
        scheduler = _start([str(bindir / "airflow"), "scheduler"], server_env, tmp_path / "scheduler.log")
        run = wait_for_run(airflow, CONSUMER, timeout=120)
        run_seconds = time.monotonic() - started
        assert run["state"] == "success", (tmp_path / "scheduler.log").read_text(errors="replace")[-3000:]
        assert run["run_type"] == "asset_triggered"
        xcom = airflow.get(
            f"/api/v2/dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/taskInstances/handle_approvals"
            "/xcomEntries/return_value"
        )
        # Airflow gives a run the events up to the moment its queue entry was created (the first
        # event); "p-second" arrived while the DAG was already queued, so it goes to the next run.
        assert xcom["value"] in (["p-first"], '["p-first"]')
    finally:
        for proc in (scheduler, receiver):
            if proc is not None:
                _stop(proc)
        _stop(api)
        reset_approvals()
    receiver_log = (tmp_path / "receiver.log").read_text(errors="replace")
    # Once at the first event, once more after the JWT expired; never the password.
    assert receiver_log.count("Logged in to Airflow") == 2, receiver_log
    assert password not in receiver_log
    print(
        f"api-server startup {startup:.1f} s, receiver startup {receiver_startup:.1f} s, "
        f"event → asset event {latency * 1000:.0f} ms, scheduler start → run done {run_seconds:.1f} s"
    )


def wait_for_run(airflow: Airflow, dag_id: str, *, timeout: float) -> dict[str, Any]:
    """The DAG's first run once it has finished (success or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
        if runs and runs[0]["state"] in ("success", "failed"):
            return dict(runs[0])
        time.sleep(1)
    raise AssertionError(f"no finished run of {dag_id} within {timeout} s")
