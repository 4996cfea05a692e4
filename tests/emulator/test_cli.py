"""``dingtalk-emulator`` as a person uses it from a shell: export lines pasted as they are, the same
credentials after a restart, and the inbox and request log of the running process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_provider_dingtalk.testing.emulator.cli import READY_LINE, main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _emulator(*args: str) -> Iterator[list[str]]:
    """The tool in its own process; yields what it printed up to its ready line."""
    cmd = [sys.executable, "-m", "airflow_provider_dingtalk.testing.emulator.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            if line.strip() == READY_LINE:
                break
            if line.startswith(("export ", "# ")):  # not Airflow's log lines (unit test mode says hello)
                lines.append(line.rstrip("\n"))
        else:
            raise AssertionError(f"exited with {proc.wait()} before {READY_LINE!r}: {lines}")
        yield lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _shell_env(lines: list[str]) -> dict[str, str]:
    """Paste the printed lines into bash, as they are, and read back the environment it ends with."""
    script = "\n".join(lines) + "\nenv -0\n"
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env={}).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_printed_lines_work_in_a_shell_and_survive_a_restart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(_free_port())
    with _emulator("--port", port, "--seed", "7") as first:
        env = _shell_env(first)
        names = {"AIRFLOW_CONN_DINGTALK_DEFAULT", "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"}
        assert names | {"AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT"} <= set(env)
        robot = json.loads(env["AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"])
        assert robot["conn_type"] == "dingtalkcustomrobot"
        assert robot["host"] == f"http://127.0.0.1:{port}"

        # The pasted connection is one the provider uses as it is.
        from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
        from airflow_provider_dingtalk.messages import Text

        monkeypatch.setenv(
            "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", env["AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"]
        )
        DingTalkCustomRobotHook().send(Text(content="from the shell"))
        capsys.readouterr()  # the hook's log lines

        assert main(["inbox", "--url", robot["host"], "--channel", "custom_robot"]) == 0
        [delivered] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert delivered["channel"] == "custom_robot"
        assert delivered["message"]["text"] == {"content": "from the shell"}

        assert main(["requests", "--url", robot["host"], "--path", "/robot/send"]) == 0
        out = capsys.readouterr().out
        [sent] = [json.loads(line) for line in out.splitlines()]
        assert sent["status"] == 200 and sent["body"]["msgtype"] == "text"
        assert robot["password"] not in out and robot["extra"]["secret"] not in out  # masked in the log

    with _emulator("--port", port, "--seed", "7") as second:
        assert second == first  # same seed, same port: every saved connection still works

    with _emulator("--port", port, "--seed", "8") as other:
        assert _shell_env(other)["AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"] != robot


def test_reading_an_emulator_that_is_not_running_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["inbox", "--url", url]) == 1
    assert f"no emulator answered at {url}" in capsys.readouterr().err


def test_help_names_the_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow_provider_dingtalk.testing.emulator.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "--seed" in out and "subcommands: inbox, requests" in out
