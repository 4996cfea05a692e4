"""Airflow on CeleryExecutor as a cluster runs it, on loopback: for tests/cluster and benchmarks/cluster.py.

Postgres (the metadata database and Celery's result backend) and Redis (Celery's broker on database
0, the provider's shared state on database 3, as docs/cluster.rst advises) are started from Debian's
packages with their own data folders (:mod:`tests.services`). Then ``airflow db migrate``, the API
server, the scheduler, the DAG processor and ``workers`` Celery workers, each in its own process
group. Every worker gets its own ``AIRFLOW_DINGTALK_STATE_DIR``, so the file backend behaves on it
as on a machine of its own; every process has ``[dingtalk] state_backend = redis``.

The DingTalk connections (the emulator's app and two custom robots) come as ``AIRFLOW_CONN_*``:
``dingtalk_default`` and ``dingtalk_custom_robot_default`` use the configured (Redis) backend,
``dingtalk_files`` and ``dingtalk_custom_robot_files`` choose the file backend in their extras: what
users get without Redis. The two robots are separate, so one's block does not touch the other.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_services import AirflowServices, wait_for
from tests.services import PostgresServer, RedisServer, free_port

DAGS = Path(__file__).resolve().parent / "dags"
DAG_IDS = (
    "cluster_storm_redis",
    "cluster_storm_files",
    "cluster_tokens_redis",
    "cluster_tokens_files",
    "cluster_on_approval",
)
ROBOTS = {"redis": "storm-redis", "files": "storm-files"}  # emulator robot per backend
STARTUP_TIMEOUT = 180.0
REDIS_PASSWORD = "cluster-redis-pass-7"


class CeleryCluster:
    """Start with :meth:`start`, stop with :meth:`close`; :attr:`airflow` is the running services.

    :param workers: Celery workers, each a "machine" with its own state folder.
    :param concurrency: task slots per worker.
    :param api_servers: API servers (event receivers), each a "machine" too; the first serves the REST
        API and the tasks' execution API.
    :param file_api_servers: more API servers whose receivers keep their state in files (``[dingtalk]
        state_backend = file``), to compare with.
    """

    def __init__(
        self,
        emulator: DingTalkEmulator,
        *,
        workers: int,
        concurrency: int,
        api_servers: int = 1,
        file_api_servers: int = 0,
    ) -> None:
        self.emulator = emulator
        self.workers = [f"worker{n}" for n in range(1, workers + 1)]
        self.concurrency = concurrency
        self.redis = RedisServer(password=REDIS_PASSWORD)
        self.postgres = PostgresServer()
        # Not under pytest's basetemp: other pytest sessions on the machine prune it, logs included.
        self.home = Path(tempfile.mkdtemp(prefix="airflow-cluster-"))
        self.api_ports = [free_port() for _ in range(api_servers)]
        self.file_api_ports = [free_port() for _ in range(file_api_servers)]
        self.airflow = AirflowServices(self.home, {}, f"http://127.0.0.1:{self.api_ports[0]}")
        self.startup_seconds = 0.0

    @property
    def state_url(self) -> str:
        """The provider's Redis (database 3; Celery's broker is database 0 of the same server)."""
        return self.redis.url.removesuffix("/0") + "/3"

    def _env(self) -> dict[str, str]:
        emulator = self.emulator
        robots = {backend: emulator.add_robot(name) for backend, name in ROBOTS.items()}
        # The test session's own Airflow settings (unit-test mode, its home) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(len(self.workers) * self.concurrency),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
                "AIRFLOW__API__PORT": str(self.api_ports[0]),
                # Tasks reach the execution API through base_url: without it, localhost:8080.
                "AIRFLOW__API__BASE_URL": self.airflow.url,
                "AIRFLOW__DINGTALK__STATE_BACKEND": "redis",
                "AIRFLOW__DINGTALK__REDIS_URL": self.state_url,
                "AIRFLOW_DINGTALK_STATE_DIR": str(self.home / "state-services"),
                "AIRFLOW_CONN_DINGTALK_DEFAULT": emulator.connection_json(),
                "AIRFLOW_CONN_DINGTALK_FILES": emulator.connection_json(state_backend="file"),
                "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT": emulator.webhook_connection_json(
                    robots["redis"]
                ),
                "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_FILES": emulator.webhook_connection_json(
                    robots["files"], state_backend="file"
                ),
                # The receiver plugin on every API server reads it (its de-duplication: Redis too).
                "AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT": json.dumps(
                    {**emulator.receiver.connection(), "host": self.airflow.url + "/dingtalk/events"}
                ),
            }
        )
        return env

    def start(self) -> CeleryCluster:
        started = time.monotonic()
        self.redis.start()
        self.postgres.start()
        self.airflow.env = self._env()
        self.airflow.cli("db", "migrate", timeout=300)
        for n, port in enumerate(self.api_ports + self.file_api_ports):
            env = {"AIRFLOW_DINGTALK_STATE_DIR": str(self.home / f"state-api-server-{n + 1}")}
            if port in self.file_api_ports:
                env["AIRFLOW__DINGTALK__STATE_BACKEND"] = "file"
            self.airflow.start(
                "api-server" if n == 0 else f"api-server-{n + 1}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                command=("api-server",),
                env=env,
            )
        self.airflow.start("scheduler")
        self.airflow.start("dag-processor")
        for worker in self.workers:
            # --skip-serve-logs: each worker's log server would take the same port on this one host;
            # the API server reads the task logs from the shared Airflow home instead.
            self.airflow.start(
                worker,
                "--celery-hostname",
                f"{worker}@%h",
                "--skip-serve-logs",
                command=("celery", "worker"),
                env={"AIRFLOW_DINGTALK_STATE_DIR": str(self.home / f"state-{worker}")},
            )
        self.airflow.wait_healthy(("metadatabase", "scheduler", "dag_processor"), timeout=STARTUP_TIMEOUT)
        self.airflow.wait_parsed(DAG_IDS, timeout=STARTUP_TIMEOUT)
        for port in self.api_ports[1:] + self.file_api_ports:
            wait_for(
                f"API server on {port}",
                functools.partial(_answers, f"http://127.0.0.1:{port}/api/v2/monitor/health"),
                timeout=STARTUP_TIMEOUT,
                logs=self.airflow.logs,
            )
        for worker in self.workers:
            self._wait_ready(worker)
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, worker: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        log = self.airflow.log_path(worker)
        while " ready." not in log.read_text(errors="replace"):  # celery's "celery@worker1@host ready."
            self.airflow.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Celery {worker} not ready within {STARTUP_TIMEOUT:.0f} s\n{self.airflow.logs()}"
                )
            time.sleep(0.5)

    def close(self, request: pytest.FixtureRequest | None = None, *, keep_logs: bool = False) -> None:
        """Stop everything and remove the data folders; the Airflow home (the services' logs) stays if
        a test of ``request`` failed or ``keep_logs``."""
        if request is not None:
            self.airflow.finish(request)
        else:
            self.airflow.stop()
            if not keep_logs:
                shutil.rmtree(self.home, ignore_errors=True)
        self.postgres.close()
        self.redis.close()

    # -- what happened ------------------------------------------------------------------------------

    def run(self, dag_id: str, *, timeout: float, **conf: Any) -> str:
        """Trigger ``dag_id`` with ``conf`` and wait until the run has finished; its run id."""
        run_id = self.airflow.trigger_run(dag_id, conf)
        self.airflow.wait_for_run(dag_id, run_id, timeout=timeout)
        return run_id

    def tasks_per_worker(self) -> dict[str, int]:
        """Tasks each Celery worker received (from its log): both must have worked for the proof."""
        pattern = re.compile(r"Task \S*execute_workload\[[^\]]+\] received")
        return {
            w: len(pattern.findall(self.airflow.log_path(w).read_text(errors="replace")))
            for w in self.workers
        }


def _answers(url: str) -> bool:
    return requests.get(url, timeout=5).ok


def alerts_accounted(messages: list[dict[str, Any]], dag_id: str) -> tuple[list[int], int]:
    """Map indexes of ``dag_id``'s ``fail`` tasks named in robot messages, and how many a summary counts
    without naming them ("…and N more"). A storm is handled right when every index is named once, or
    the counted ones make up the rest."""
    named: list[int] = []
    unnamed = 0
    for message in messages:
        payload = message.get(message.get("msgtype", ""), {})
        text = f"{payload.get('title', '')}\n{payload.get('text', '')}"
        if "folded into one" in text:
            if f"**{dag_id}**" not in text:
                continue
            named += [int(i) for i in re.findall(r"^- \S+ \[?fail\[(\d+)\]", text, flags=re.M)]
            unnamed += sum(int(n) for n in re.findall(r"…and (\d+) more", text))
        else:
            named += [
                int(i) for i in set(re.findall(rf"Task failed: {re.escape(dag_id)}\.fail\[(\d+)\]", text))
            ]
    return named, unnamed


def sends_per_minute(times: list[float]) -> int:
    """The most messages within any 60 seconds (DingTalk's sliding window) among ``times``."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 60:
            first += 1
        most = max(most, last - first + 1)
    return most
