"""The DingTalk emulator in its own process, for benchmarks.

In a thread of the measuring process the emulator would compete with the client for the GIL, and a
process that forks task-like children should have no server threads. So benchmarks start the
``dingtalk-emulator`` command-line tool and read what it received over its ``/_emulator`` control API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from typing import Any

_CONNECTION_PREFIX = "  connection: AIRFLOW_CONN_DINGTALK_DEFAULT="


class EmulatorProcess:
    """``with EmulatorProcess() as emulator:`` runs ``dingtalk-emulator --port 0`` until the block ends."""

    def __init__(self) -> None:
        self.url = ""
        self._connection: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "airflow_provider_dingtalk.testing.emulator.cli", "--port", "0"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # the tool prints its URL, apps, then the connection
            if line.startswith(_CONNECTION_PREFIX):
                self._connection = json.loads(line[len(_CONNECTION_PREFIX) :].strip().strip("'"))
                self.url = self._connection["host"]
                break
        else:
            raise RuntimeError(f"dingtalk-emulator exited with {self._proc.wait()} before printing its URL")
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
        with urllib.request.urlopen(f"{self.url}/_emulator/requests", timeout=30) as resp:
            return Counter(record["path"] for record in json.load(resp))


def task_env(conn_json: str, state_dir: str) -> dict[str, str]:
    """The environment of a task process: the connection, and a private token-cache folder."""
    env = dict(os.environ)
    env["AIRFLOW_CONN_DINGTALK_DEFAULT"] = conn_json
    env["AIRFLOW_DINGTALK_STATE_DIR"] = state_dir
    return env
