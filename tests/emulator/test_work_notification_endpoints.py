"""The emulator's work-notification endpoints over raw HTTP: both body encodings, caps and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

BASE = "/topapi/message/corpconversation"


def token(emulator: DingTalkEmulator) -> str:
    app = emulator.app
    answer = requests.get(
        f"{emulator.url}/gettoken", params={"appkey": app.app_key, "appsecret": app.app_secret}, timeout=5
    )
    return str(answer.json()["access_token"])


def post(emulator: DingTalkEmulator, path: str, body: dict[str, Any], *, form: bool = False) -> Any:
    url = f"{emulator.url}{path}"
    params = {"access_token": token(emulator)}
    if form:
        data = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in body.items()}
        return requests.post(url, params=params, data=data, timeout=5).json()
    return requests.post(url, params=params, json=body, timeout=5).json()


def test_form_encoded_send_is_accepted(dingtalk_emulator: DingTalkEmulator) -> None:
    app = dingtalk_emulator.app
    msg = {"msgtype": "text", "text": {"content": "表单"}}
    body = {"agent_id": str(app.agent_id), "userid_list": "user1,user2", "msg": msg}
    answer = post(dingtalk_emulator, f"{BASE}/asyncsend_v2", body, form=True)
    assert answer["errcode"] == 0 and isinstance(answer["task_id"], int)
    assert [(d.target, d.message) for d in dingtalk_emulator.inbox()] == [("user1", msg), ("user2", msg)]
    form_progress = post(
        dingtalk_emulator,
        f"{BASE}/getsendprogress",
        {"agent_id": str(app.agent_id), "task_id": str(answer["task_id"])},
        form=True,
    )
    assert form_progress["progress"]["status"] == 1


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({"agent_id": 1}, 40056),
        ({"agent_id": None}, 40035),
        ({"userid_list": ",".join(f"user{i}" for i in range(5001))}, 40035),
        ({"dept_id_list": ",".join(str(i) for i in range(1, 502))}, 40035),
        ({"msg": {"msgtype": "text", "text": {"content": "x" * 2100}}}, 40035),
        ({"msg": {"msgtype": "actionCard", "actionCard": {}}}, 40035),
        ({"userid_list": None}, 40035),
    ],
)
def test_send_limits(dingtalk_emulator: DingTalkEmulator, change: dict[str, Any], errcode: int) -> None:
    body = {
        "agent_id": dingtalk_emulator.app.agent_id,
        "userid_list": "user1",
        "msg": {"msgtype": "text", "text": {"content": "x"}},
    } | change
    answer = post(dingtalk_emulator, f"{BASE}/asyncsend_v2", {k: v for k, v in body.items() if v is not None})
    assert answer["errcode"] == errcode and "task_id" not in answer
    assert dingtalk_emulator.inbox() == []


def test_exactly_at_the_caps_is_fine(dingtalk_emulator: DingTalkEmulator) -> None:
    content = "x" * (2048 - len('{"msgtype":"text","text":{"content":""}}'))
    body = {
        "agent_id": dingtalk_emulator.app.agent_id,
        "userid_list": ",".join(f"user{i}" for i in range(5000)),
        "dept_id_list": ",".join(str(i) for i in range(1, 501)),
        "msg": {"msgtype": "text", "text": {"content": content}},
    }
    assert post(dingtalk_emulator, f"{BASE}/asyncsend_v2", body)["errcode"] == 0
    assert len(dingtalk_emulator.inbox()) == 5500


def test_tasks_of_another_app_or_unknown_ids_are_errors(dingtalk_emulator: DingTalkEmulator) -> None:
    agent = dingtalk_emulator.app.agent_id
    for path, key in (
        ("getsendresult", "task_id"),
        ("recall", "msg_task_id"),
        ("status_bar/update", "task_id"),
    ):
        answer = post(dingtalk_emulator, f"{BASE}/{path}", {"agent_id": agent, key: 5, "status_value": "x"})
        assert answer["errcode"] == 40035, path
