"""What several test modules share: a fast retry policy, a task callback's context, log capture, a
forward proxy.
Fixtures are in ``tests/conftest.py`` and the shipped pytest plugin.

Tests import from here (``from tests.helpers import FAST, fake_context``), never from another test module.
"""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import logging
import select
import socket
import threading
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_dingtalk.retry import RetryPolicy

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10)
"""The default policy's retries with waits of milliseconds, so a retried test takes no real time."""

LOG_URL = "http://airflow.example.com/dags/etl/runs/r1/tasks/load?try_number=2"


def fake_context(
    *,
    task_id: str = "load",
    run_id: str = "manual__r1",
    exception: BaseException | str | None = None,
    **ti: Any,
) -> dict[str, Any]:
    """What a task's on_failure_callback receives (the parts the alert reads)."""
    start = dt.datetime(2025, 1, 1, 3, 0, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "dag_id": "etl",
        "task_id": task_id,
        "run_id": run_id,
        "map_index": 3,
        "try_number": 2,
        "max_tries": 2,
        "state": "failed",
        "start_date": start,
        "end_date": start + dt.timedelta(seconds=42.5),
        "hostname": "worker-7",
        "log_url": LOG_URL,
        **ti,
    }
    instance = SimpleNamespace(**fields)
    return {"ti": instance, "task_instance": instance, "run_id": run_id, "exception": exception}


class Logs:
    """Everything logged: stdlib records and structlog's lines (Airflow's LoggingMixin prints those)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        self.caplog, self.capfd, self.printed = caplog, capfd, ""

    @property
    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.printed += out + err
        return self.caplog.text + self.printed


class ForwardProxy:
    """An HTTP forward proxy on loopback: absolute-URL requests forwarded, CONNECT tunnelled (as
    websockets asks), each recorded in ``seen`` as ``"METHOD target"``."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                upstream.request(self.command, path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

            def do_CONNECT(self) -> None:
                proxy.seen.append(f"CONNECT {self.path}")
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                sockets = [self.connection, upstream]
                try:
                    while True:  # until either side closes
                        readable, _, _ = select.select(sockets, [], [], 10)
                        if not readable:
                            return
                        for sock in readable:
                            data = sock.recv(65536)
                            if not data:
                                return
                            (upstream if sock is self.connection else self.connection).sendall(data)
                finally:
                    upstream.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_dag_file(source: str, dag_id: str, folder: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write ``source`` as a DAG file in ``folder`` (a user's DAG folder) and run it with ``dag.test()``.

    dag.test() serializes the DAG from its bundle, the DAG folder, which Airflow read into
    ``settings.DAGS_FOLDER`` at import: both are pointed at ``folder``. Needs the
    ``dingtalk_airflow_db`` fixture.
    """
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))
    (folder / f"{dag_id}.py").write_text(source)
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id].test()
