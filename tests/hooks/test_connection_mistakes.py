"""Connection mistakes say what is wrong, before anything is sent.

Before: a connection of the wrong type said "login (AppKey) is empty"; a custom ``host`` without
``api_host`` sent v1.0 calls, AppSecret included, to the real api.dingtalk.com; a webhook URL pasted
into Host built a broken URL; a robot secret without ``SEC`` went out and failed DingTalk's signature
check; the 40089 message did not say which connection holds the wrong credentials.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
from airflow_provider_dingtalk.messages import Text
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

ONCE = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.01, max_elapsed=2)
APP_ENV, ROBOT_ENV = "AIRFLOW_CONN_DINGTALK_DEFAULT", "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"


def set_conn(monkeypatch: pytest.MonkeyPatch, env: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(env, json.dumps(conn))


def work_send() -> Any:
    return DingTalkWorkNotificationHook(retry_policy=ONCE).send_work_notification(
        Text(content="x"), userid_list=["user1"]
    )


def robot_send() -> Any:
    return DingTalkCustomRobotHook(retry_policy=ONCE).send(Text(content="x"))


def test_a_webhook_connection_given_to_an_app_hook_says_so(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    set_conn(monkeypatch, APP_ENV, json.loads(dingtalk_emulator.webhook_connection_json(robot)))
    with pytest.raises(DingTalkValidationError) as info:
        work_send()
    text = str(info.value)
    assert "'dingtalk_default'" in text and "'dingtalkcustomrobot'" in text and "'dingtalk'" in text
    assert dingtalk_emulator.requests() == []


def test_an_app_connection_given_to_the_custom_robot_says_so(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_conn(monkeypatch, ROBOT_ENV, dingtalk_emulator.connection())
    with pytest.raises(DingTalkValidationError) as info:
        robot_send()
    assert "is a 'dingtalk' connection" in str(info.value) and "'dingtalkcustomrobot'" in str(info.value)
    assert dingtalk_emulator.requests() == []


def test_a_custom_host_without_api_host_never_sends_v1_calls_to_dingtalk(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection(connect_timeout=0.5)
    del conn["extra"]["api_host"]
    set_conn(monkeypatch, APP_ENV, conn)
    hook = DingTalkAppRobotHook(retry_policy=ONCE)
    with pytest.raises(DingTalkValidationError, match="api_host") as info:
        hook.send_robot_group_message(Text(content="x"), open_conversation_id="cidOps")
    assert info.value.field == "connection 'dingtalk_default'"
    assert dingtalk_emulator.app.app_secret not in str(info.value)
    # the old API still works through the custom host
    assert len(work_send()) == 1


def test_api_host_may_name_dingtalk_itself(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection(api_host="https://api.dingtalk.com")
    set_conn(monkeypatch, APP_ENV, conn)
    assert DingTalkAppRobotHook().app.api_host == "https://api.dingtalk.com"


def test_a_webhook_url_pasted_into_host_is_refused_without_showing_it(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot(secret=False)
    conn = json.loads(dingtalk_emulator.webhook_connection_json(robot))
    url = f"{dingtalk_emulator.url}/robot/send?access_token={robot.token}"
    set_conn(monkeypatch, ROBOT_ENV, {**conn, "host": url})
    with pytest.raises(DingTalkValidationError, match="webhook URL") as info:
        robot_send()
    assert info.value.field == "connection 'dingtalk_custom_robot_default'"
    assert robot.token not in str(info.value)
    assert dingtalk_emulator.requests() == []


def test_a_robot_secret_without_sec_is_caught_before_sending(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    conn = json.loads(dingtalk_emulator.webhook_connection_json(robot))
    conn["extra"]["secret"] = conn["extra"]["secret"].removeprefix("SEC")
    set_conn(monkeypatch, ROBOT_ENV, conn)
    with pytest.raises(DingTalkValidationError, match="SEC") as info:
        robot_send()
    assert info.value.field == "connection 'dingtalk_custom_robot_default' extra secret"
    assert conn["extra"]["secret"] not in str(info.value)
    assert dingtalk_emulator.requests() == []


def test_40089_names_the_connection(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection()
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_OPS_APP", json.dumps(conn))
    with pytest.raises(DingTalkAPIError) as info:
        DingTalkWorkNotificationHook("ops_app", retry_policy=ONCE).send_work_notification(
            Text(content="x"), userid_list=["user1"]
        )
    assert info.value.errcode == 40089
    assert "connection 'ops_app'" in str(info.value) and "not-the-secret" not in str(info.value)


def test_an_app_connection_given_as_the_callback_connection_says_so(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dingtalk.hooks.event_callback import DingTalkEventCallbackHook

    set_conn(monkeypatch, "AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", dingtalk_emulator.connection())
    with pytest.raises(
        DingTalkValidationError, match="is a 'dingtalk' connection; this needs a 'dingtalkcallback'"
    ):
        DingTalkEventCallbackHook().get_config()
