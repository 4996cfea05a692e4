"""The DingTalk emulator in its own process, for benchmarks.

In a thread of the measuring process the emulator would compete with the client for the GIL, and a
process that forks task-like children should have no server threads. So benchmarks start the
``dingtalk-emulator`` command-line tool and read what it received over its ``/_emulator`` control API.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

_CONNECTION_PREFIX = "export "
_READY = "Press Ctrl-C to stop."  # the tool's last line (cli.READY_LINE)


class EmulatorProcess:
    """``with EmulatorProcess() as emulator:`` runs ``dingtalk-emulator --port 0`` until the block ends."""

    def __init__(self) -> None:
        self.url = ""
        self._connection: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        """``AIRFLOW_CONN_*`` for every default connection id (app, custom robot, callback receiver)."""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "airflow_provider_dingtalk.testing.emulator.cli", "--port", "0"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # the tool prints its URL, apps, the connections, then _READY
            if line.startswith(_CONNECTION_PREFIX):
                name, _, value = line[len(_CONNECTION_PREFIX) :].strip().partition("=")
                self.env[name] = shlex.split(value)[0]  # the tool quotes it for a shell
            elif line.strip() == _READY:
                break
        else:
            raise RuntimeError(f"dingtalk-emulator exited with {self._proc.wait()} before printing its URL")
        self._connection = json.loads(self.env["AIRFLOW_CONN_DINGTALK_DEFAULT"])
        self.url = self._connection["host"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def connection_json(self, **extra: Any) -> str:
        """``AIRFLOW_CONN_DINGTALK_DEFAULT`` for the demo app, with ``extra`` merged into its extras."""
        conn = dict(self._connection)
        conn["extra"] = {**conn.get("extra", {}), **extra}
        return json.dumps(conn)

    def calls(self) -> Counter[str]:
        """Requests received so far, per path (control-API calls are not counted)."""
        return Counter(record["path"] for record in self.requests())

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """The request log (secrets masked), optionally only the requests to ``path``."""
        query = f"?{urllib.parse.urlencode({'path': path})}" if path else ""
        return self._get(f"/_emulator/requests{query}")  # type: ignore[no-any-return]

    def inbox(self, channel: str | None = None) -> list[dict[str, Any]]:
        """What was delivered, optionally of one channel (``work_notification``, ``custom_robot`` …)."""
        query = f"?{urllib.parse.urlencode({'channel': channel})}" if channel else ""
        return self._get(f"/_emulator/inbox{query}")  # type: ignore[no-any-return]

    def now(self) -> float:
        """The emulator's clock (real time plus what :meth:`advance` added)."""
        return float(self._get("/_emulator/clock")["now"])

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock forward; returns its new time."""
        request = urllib.request.Request(
            f"{self.url}/_emulator/clock/advance",
            data=json.dumps({"seconds": seconds}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return float(json.load(resp)["now"])

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as resp:
            return json.load(resp)


def task_env(conn_json: str, state_dir: str) -> dict[str, str]:
    """The environment of a task process: the connection, and a private token-cache folder."""
    env = dict(os.environ)
    env["AIRFLOW_CONN_DINGTALK_DEFAULT"] = conn_json
    env["AIRFLOW_DINGTALK_STATE_DIR"] = state_dir
    return env


def timed_block(call: Callable[[], object], n: int, into: list[float]) -> None:
    """Time ``n`` calls one by one; benchmarks alternate such blocks so noise hits both sides alike."""
    for _ in range(n):
        started = time.perf_counter()
        call()
        into.append(time.perf_counter() - started)
