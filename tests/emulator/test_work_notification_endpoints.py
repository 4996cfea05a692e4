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
    # department N's one member is user<N>, already in the user list: each person gets it once
    assert len(dingtalk_emulator.inbox()) == 5000


def test_tasks_of_another_app_or_unknown_ids_are_errors(dingtalk_emulator: DingTalkEmulator) -> None:
    agent = dingtalk_emulator.app.agent_id
    for path, key in (
        ("getsendresult", "task_id"),
        ("recall", "msg_task_id"),
        ("status_bar/update", "task_id"),
    ):
        answer = post(dingtalk_emulator, f"{BASE}/{path}", {"agent_id": agent, key: 5, "status_value": "x"})
        assert answer["errcode"] == 40035, path


def _send(emulator: DingTalkEmulator, content: str, **lists: str) -> Any:
    body = {"agent_id": emulator.app.agent_id, "msg": {"msgtype": "text", "text": {"content": content}}}
    return post(emulator, f"{BASE}/asyncsend_v2", body | lists)


def _result(emulator: DingTalkEmulator, task_id: int) -> Any:
    return post(emulator, f"{BASE}/getsendresult", {"agent_id": emulator.app.agent_id, "task_id": task_id})


def test_more_than_5000_recipients_a_minute_are_filtered_with_143103(
    dingtalk_emulator: DingTalkEmulator,
) -> None:
    first = _send(dingtalk_emulator, "a", userid_list=",".join(f"user{i}" for i in range(4999)))
    second = _send(dingtalk_emulator, "b", userid_list="user90001,user90002")
    assert first["errcode"] == second["errcode"] == 0  # DingTalk still answers success
    result = _result(dingtalk_emulator, second["task_id"])["send_result"]
    assert result["unread_user_id_list"] == ["user90001"]
    assert result["forbidden_list"] == [{"code": "143103", "count": 5000, "userid": "user90002"}]
    assert result["forbidden_user_id_list"] == ["user90002"]
    dingtalk_emulator.advance(60)  # a minute later the window is free again
    third = _send(dingtalk_emulator, "b", userid_list="user90002")
    assert _result(dingtalk_emulator, third["task_id"])["send_result"]["unread_user_id_list"] == ["user90002"]


def test_a_department_send_reaches_each_member_once(dingtalk_emulator: DingTalkEmulator) -> None:
    from airflow_provider_dingtalk.testing.emulator.endpoints.directory import directory

    directory(dingtalk_emulator.state).department_members.update(
        {7: ("user1", "user2"), 8: ("user2", "user3")}
    )
    answer = _send(dingtalk_emulator, "all hands", userid_list="user1", dept_id_list="7,8")
    assert [(d.target, d.meta.get("dept_id")) for d in dingtalk_emulator.inbox()] == [
        ("user1", None),
        ("user2", 7),
        ("user3", 8),
    ]
    # silently: DingTalk does not report the overlap as filtered
    assert _result(dingtalk_emulator, answer["task_id"])["send_result"]["forbidden_list"] == []
    # a retried department send is the same content again: its members are filtered with 143106
    again = _send(dingtalk_emulator, "all hands", dept_id_list="7")
    assert [
        f["userid"] for f in _result(dingtalk_emulator, again["task_id"])["send_result"]["forbidden_list"]
    ] == [
        "user1",
        "user2",
    ]


def test_tasks_older_than_24_hours_no_longer_answer(dingtalk_emulator: DingTalkEmulator) -> None:
    task_id = _send(dingtalk_emulator, "old", userid_list="user1")["task_id"]
    agent = dingtalk_emulator.app.agent_id
    dingtalk_emulator.advance(86400 - 5)
    assert _result(dingtalk_emulator, task_id)["errcode"] == 0  # just under 24 h: still there
    dingtalk_emulator.advance(10)
    for path in ("getsendprogress", "getsendresult"):
        answer = post(dingtalk_emulator, f"{BASE}/{path}", {"agent_id": agent, "task_id": task_id})
        assert answer["errcode"] == 40035 and "24" in answer["errmsg"], path
