"""Answers that are not DingTalk results: the gateway's per-IP block body, a 404/403 page in JSON.

Before, an old-API answer without ``errcode`` was taken as success: a robot alert was "sent" and lost,
recall and delete reported done, and ``send_work_notification`` died with ``KeyError: 'task_id'``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.hooks.app_robot import GROUP_SEND_PATH, DingTalkAppRobotHook
from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import (
    RECALL_PATH,
    SEND_PATH,
    DingTalkWorkNotificationHook,
)
from airflow_provider_dingtalk.messages import Text
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10)
# What DingTalk's gateway answers while it blocks an egress IP (DingTalk's "调用频率限制" page).
IP_BLOCK = {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": "f3c1"}
NOT_FOUND = {"timestamp": "2024-01-01T00:00:00Z", "status": 404, "error": "Not Found", "path": "/x"}


@pytest.fixture
def conns(dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    robot = dingtalk_conn.add_robot()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT",
        dingtalk_conn.webhook_connection_json(robot, read_timeout=5),
    )
    return dingtalk_conn


def _robot_send() -> Any:
    return DingTalkCustomRobotHook(retry_policy=FAST).send(Text(content="disk full"))


def _work_send() -> Any:
    return DingTalkWorkNotificationHook(retry_policy=FAST).send_work_notification(
        Text(content="hi"), userid_list=["user1"]
    )


def _recall() -> Any:
    return DingTalkWorkNotificationHook(retry_policy=FAST).recall(1)


def _delete_callback() -> Any:
    return DingTalkCallbackHook(retry_policy=FAST).delete_callback()


def _group_send() -> Any:
    return DingTalkAppRobotHook(retry_policy=FAST).send_robot_group_message(
        Text(content="hi"), open_conversation_id="cidOps"
    )


CALLS: list[tuple[str, str, Callable[[], Any]]] = [
    ("custom robot send", "/robot/send", _robot_send),
    ("work notification send", SEND_PATH, _work_send),
    ("recall", RECALL_PATH, _recall),
    ("delete callback", "/call_back/delete_call_back", _delete_callback),
    ("app robot group send", GROUP_SEND_PATH, _group_send),
]


@pytest.mark.parametrize(("path", "call"), [pytest.param(p, c, id=n) for n, p, c in CALLS])
def test_a_json_404_page_is_an_error_not_a_success(conns: DingTalkEmulator, path: str, call: Any) -> None:
    conns.inject(path, status=200, body=NOT_FOUND, times=5)
    with pytest.raises(DingTalkAPIError, match="not a DingTalk answer") as info:
        call()
    assert info.value.api == path
    assert conns.calls(path) == 1  # not retried: nothing says it would go better
    assert conns.inbox() == []


@pytest.mark.parametrize(("path", "call"), [pytest.param(p, c, id=n) for n, p, c in CALLS])
def test_the_gateway_ip_block_is_retried_then_reported(conns: DingTalkEmulator, path: str, call: Any) -> None:
    conns.inject(path, status=200, body=IP_BLOCK, times=FAST.attempts)
    with pytest.raises(DingTalkAPIError, match="blocked this machine's IP") as info:
        call()
    assert info.value.code == "IPBlocked"
    assert conns.calls(path) == FAST.attempts
    assert conns.inbox() == []


def test_a_send_goes_through_once_the_ip_block_ends(conns: DingTalkEmulator) -> None:
    conns.inject("/robot/send", status=200, body=IP_BLOCK, times=2)
    conns.inject(SEND_PATH, status=200, body=IP_BLOCK, times=2)
    _robot_send()
    assert len(_work_send()) == 1
    assert [d.channel for d in conns.inbox()] == ["custom_robot", "work_notification"]


def test_a_send_answered_without_task_id_is_an_error(conns: DingTalkEmulator) -> None:
    conns.inject(SEND_PATH, status=200, body={"errcode": 0, "errmsg": "ok"})
    with pytest.raises(DingTalkAPIError, match="task_id"):
        _work_send()


def test_an_error_page_with_errcode_0_is_still_an_error(conns: DingTalkEmulator) -> None:
    conns.inject(RECALL_PATH, status=403, body={"errcode": 0, "errmsg": "forbidden"})
    with pytest.raises(DingTalkAPIError, match="HTTP 403"):
        _recall()
