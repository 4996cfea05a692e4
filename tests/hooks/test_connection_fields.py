"""What the connection form's fields do: Agent ID as a standard field, the outbound proxy (the
connection's, or HTTPS_PROXY/NO_PROXY, settled once per session), and the custom robot's Test button."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
from airflow_provider_dingtalk.messages import Text
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import ForwardProxy

APP_ENV, ROBOT_ENV = "AIRFLOW_CONN_DINGTALK_DEFAULT", "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    yield server
    server.close()


def _set(monkeypatch: pytest.MonkeyPatch, env: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(env, json.dumps(conn))


# -- Agent ID ------------------------------------------------------------------------------------


def test_agent_id_from_the_form_field_or_the_old_extra(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection()
    assert conn["schema"] == str(dingtalk_emulator.app.agent_id)  # what the form's Agent ID saves
    _set(monkeypatch, APP_ENV, conn)
    DingTalkWorkNotificationHook().send_work_notification(Text(content="form"), userid_list=["user1"])
    # A connection written as JSON with the agent_id extra, as the docs showed before, still works.
    old = {**conn, "extra": {**conn["extra"], "agent_id": conn.pop("schema")}}
    _set(monkeypatch, APP_ENV, old)
    DingTalkWorkNotificationHook().send_work_notification(Text(content="extra"), userid_list=["user1"])
    sent = dingtalk_emulator.requests("/topapi/message/corpconversation/asyncsend_v2")
    assert [r.body["agent_id"] for r in sent] == [dingtalk_emulator.app.agent_id] * 2


def test_two_different_agent_ids_are_refused_before_sending(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection(agent_id="999")
    _set(monkeypatch, APP_ENV, conn)
    with pytest.raises(DingTalkValidationError, match=r"Agent ID 100001 \(schema\) and agent_id 999"):
        DingTalkWorkNotificationHook().send_work_notification(Text(content="x"), userid_list=["user1"])
    assert dingtalk_emulator.requests() == []


# -- proxy ---------------------------------------------------------------------------------------


def test_the_connections_proxy_carries_every_call(
    dingtalk_emulator: DingTalkEmulator, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(monkeypatch, APP_ENV, dingtalk_emulator.connection(proxy=proxy.url))
    robot = dingtalk_emulator.add_robot()
    conn = json.loads(dingtalk_emulator.webhook_connection_json(robot, proxy=proxy.url))
    _set(monkeypatch, ROBOT_ENV, conn)

    DingTalkWorkNotificationHook().send_work_notification(Text(content="via proxy"), userid_list=["user1"])
    DingTalkCustomRobotHook().send(Text(content="via proxy"))

    paths = [urlsplit(line.split(" ", 1)[1]).path for line in proxy.seen]
    assert paths == ["/gettoken", "/topapi/message/corpconversation/asyncsend_v2", "/robot/send"]
    assert all(line.split(" ", 1)[1].startswith(dingtalk_emulator.url) for line in proxy.seen)
    assert len(dingtalk_emulator.inbox()) == 2  # and the proxy delivered them


def test_https_proxy_and_no_proxy_from_the_environment_are_read_once_per_session(
    dingtalk_emulator: DingTalkEmulator, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(ROBOT_ENV, dingtalk_emulator.webhook_connection_json(robot))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # the emulator speaks http://
    monkeypatch.setenv("http_proxy", proxy.url)
    hook = DingTalkCustomRobotHook()
    hook.send(Text(content="one"))
    assert len(proxy.seen) == 1

    # Settled when the session was made: a later change of the environment does not apply to it.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    hook.send(Text(content="two"))
    assert len(proxy.seen) == 2

    # A new hook (a new task) reads it again: NO_PROXY now sends it direct.
    DingTalkCustomRobotHook().send(Text(content="three"))
    assert len(proxy.seen) == 2
    assert len(dingtalk_emulator.inbox("custom_robot")) == 3


@pytest.mark.parametrize("value", ["proxy.example.com:3128", "ftp://proxy.example.com", "http://"])
def test_a_proxy_that_is_not_a_url_is_refused_naming_the_field(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    _set(monkeypatch, APP_ENV, dingtalk_emulator.connection(proxy=value))
    with pytest.raises(DingTalkValidationError, match="connection 'dingtalk_default' extra proxy"):
        DingTalkWorkNotificationHook().send_work_notification(Text(content="x"), userid_list=["user1"])
    assert dingtalk_emulator.requests() == []


# -- the custom robot's Test button --------------------------------------------------------------


def test_robot_test_connection_checks_here_and_says_nothing_was_sent(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(ROBOT_ENV, dingtalk_emulator.webhook_connection_json(robot))
    ok, message = DingTalkCustomRobotHook().test_connection()
    assert ok, message
    assert message.startswith("Checked here only, nothing sent: the access token and signing secret")
    assert robot.token not in message and (robot.secret or "") not in message

    unsigned = dingtalk_emulator.add_robot("unsigned", secret=False)
    monkeypatch.setenv(ROBOT_ENV, dingtalk_emulator.webhook_connection_json(unsigned))
    ok, message = DingTalkCustomRobotHook().test_connection()
    assert ok and "no signing secret" in message
    assert dingtalk_emulator.requests() == []  # nothing reached DingTalk


@pytest.mark.parametrize(
    ("password", "secret", "says"),
    [
        ("abc123", None, "not the 64 hexadecimal characters"),  # truncated token
        ("SEC" + "a" * 64, None, "not the 64 hexadecimal characters"),  # the secret pasted as token
        ("a" * 64, "SEC" + "b" * 20, "not SEC followed by 64 hexadecimal characters"),
        ("a" * 64, "b" * 64, "must start with SEC"),
        ("", None, "password is empty"),
    ],
)
def test_robot_test_connection_names_a_wrong_token_or_secret(
    dingtalk_emulator: DingTalkEmulator,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    secret: str | None,
    says: str,
) -> None:
    extra = {"secret": secret} if secret else {}
    _set(monkeypatch, ROBOT_ENV, {"conn_type": "dingtalkcustomrobot", "password": password, "extra": extra})
    ok, message = DingTalkCustomRobotHook().test_connection()
    assert not ok
    assert says in message
    assert dingtalk_emulator.requests() == []
