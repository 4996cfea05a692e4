"""Real Airflow services as users run them, each its own process group, for the production and cluster tests.

:class:`AirflowServices` starts Airflow's commands (``airflow scheduler``, ``airflow celery worker``
…) with one environment, waits for them to be healthy, reads states over the REST API and, when a
test failed, prints their logs. ``tests/production`` runs them on LocalExecutor, ``tests/cluster``
on CeleryExecutor.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

BIN = Path(sys.executable).parent


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

    def start(
        self, name: str, *args: str, command: tuple[str, ...] = (), env: Mapping[str, str] | None = None
    ) -> None:
        """``airflow <command or name> <args>`` in its own process group, logging to ``<name>.log``.

        :param command: Airflow's subcommand when ``name`` is not it (``("celery", "worker")``).
        :param env: variables added to the services' environment for this process only.
        """
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), *(command or (name,)), *args],
            env={**self.env, **(env or {})},
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

    # -- start-up and teardown ---------------------------------------------------------------------

    def wait_healthy(self, parts: Collection[str], *, timeout: float) -> None:
        """Until ``/api/v2/monitor/health`` says each of ``parts`` is healthy (and no service died)."""

        def healthy() -> bool:
            self.check_alive()
            health = self.get("/api/v2/monitor/health")
            return all(health[part]["status"] == "healthy" for part in parts)

        wait_for("services healthy", healthy, timeout=timeout, logs=self.logs)

    def wait_parsed(self, dag_ids: Collection[str], *, timeout: float) -> None:
        """Until every DAG of ``dag_ids`` is known to the API server; an import error fails at once."""

        def parsed() -> bool:
            dags = {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}
            errors = self.get("/api/v2/importErrors")["import_errors"]
            assert not errors, errors
            return set(dag_ids) <= dags

        wait_for("DAGs parsed", parsed, timeout=timeout, logs=self.logs)

    def finish(self, request: pytest.FixtureRequest) -> None:
        """Stop every service; print the logs and keep the home if a test failed, else remove it."""
        self.stop()
        if request.session.testsfailed:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(self.logs(tail=8000))
                reporter.write_line(f"Airflow home (logs) kept in {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

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

    def trigger_run(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """A manual run of ``dag_id`` with ``conf`` through the REST API (no CLI start-up); its run id."""
        resp = requests.post(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": dict(conf or {})},
            timeout=30,
        )
        resp.raise_for_status()
        return str(resp.json()["dag_run_id"])

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
