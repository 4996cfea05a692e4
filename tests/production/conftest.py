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

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import DEMO_TEMPLATE_ID

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, logs: Callable[[], str]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with the services' logs after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (requests.RequestException, KeyError, ValueError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last error: {last_error!r})\n{logs()}")


class AirflowServices:
    """The running services: the CLI as users call it, and the REST API to read states."""

    def __init__(self, home: Path, env: dict[str, str], url: str) -> None:
        self.home, self.env, self.url = home, env, url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.startup_seconds = 0.0  # db migrate until every service is healthy and the DAGs are parsed

    # -- processes -----------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), name, *args],
            env=self.env,
            stdout=self.log_path(name).open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """SIGINT to every group (a clean shutdown), then SIGKILL to any still running after 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # A group's forked workers may outlive its leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for name in self.procs:
            text = self.log_path(name).read_text(errors="replace") if self.log_path(name).exists() else ""
            parts.append(f"----- {name} (last {tail} characters) -----\n{text[-tail:]}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow services exited: {dead}\n{self.logs()}")

    # -- the CLI, as users run it --------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def trigger(self, *dag_ids: str) -> dict[str, str]:
        """``airflow dags trigger`` each DAG (concurrently: each CLI call costs seconds); their run ids."""
        procs = {
            dag_id: subprocess.Popen(
                [str(BIN / "airflow"), "dags", "trigger", dag_id, "--output", "json"],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for dag_id in dag_ids
        }
        run_ids = {}
        for dag_id, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"airflow dags trigger {dag_id}: {err.decode(errors='replace')}"
            (line,) = [x for x in out.splitlines() if x.startswith(b"[{")]  # logs go to stdout too
            (run,) = json.loads(line)
            run_ids[dag_id] = run["dag_run_id"]
        return run_ids

    # -- the REST API --------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        resp = requests.get(self.url + path, params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def unpause(self, dag_id: str) -> None:
        resp = requests.patch(f"{self.url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=30)
        resp.raise_for_status()

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float) -> dict[str, Any]:
        """The run once it has finished (success or failed)."""

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")
            return run if run["state"] in ("success", "failed") else None

        return dict(wait_for(f"run {run_id} of {dag_id} finished", finished, timeout=timeout, logs=self.logs))

    def task_instances(self, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")["task_instances"]
        return {(ti["task_id"], ti["map_index"]): ti for ti in tis}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        resp = requests.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        resp.raise_for_status()
        content = resp.json()["content"]
        return "\n".join(json.dumps(c) if not isinstance(c, str) else c for c in content)

    def explain(self, dag_id: str, run_id: str) -> str:
        """The run's task states, and the log of each task that did not succeed: for failure messages."""
        tis = self.task_instances(dag_id, run_id)
        lines = [f"{task}[{index}]: {ti['state']}" for (task, index), ti in sorted(tis.items())]
        for (task, _), ti in sorted(tis.items()):
            if ti["state"] not in ("success", None) and ti["try_number"]:
                lines.append(
                    f"--- log of {task} ---\n{self.task_log(dag_id, run_id, task, ti['try_number'])}"
                )
        return "\n".join(lines)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        entry = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value


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
    port = _free_port()
    services = AirflowServices(
        home, _service_env(home, port, production_emulator), f"http://127.0.0.1:{port}"
    )
    started = time.monotonic()
    services.cli("db", "migrate", timeout=300)
    for name in SERVICES:
        services.start(name, *(("--host", "127.0.0.1", "--port", str(port)) if name == "api-server" else ()))
    try:

        def healthy() -> bool:
            services.check_alive()
            health = services.get("/api/v2/monitor/health")
            return all(
                health[part]["status"] == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        wait_for("services healthy", healthy, timeout=STARTUP_TIMEOUT, logs=services.logs)

        def parsed() -> bool:
            dags = {d["dag_id"] for d in services.get("/api/v2/dags", limit=100)["dags"]}
            errors = services.get("/api/v2/importErrors")["import_errors"]
            assert not errors, errors
            return set(EXAMPLE_DAGS) <= dags

        wait_for("example DAGs parsed", parsed, timeout=STARTUP_TIMEOUT, logs=services.logs)
        services.startup_seconds = time.monotonic() - started
        yield services
    finally:
        services.stop()
        if request.session.testsfailed:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(services.logs(tail=8000))
                reporter.write_line(f"Airflow home (logs) kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
