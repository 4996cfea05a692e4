"""Work notifications through the hook against the emulator: what arrives, batching, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_dingtalk import messages as m
from airflow_provider_dingtalk.exceptions import (
    DingTalkAPIError,
    DingTalkPartialSendError,
    DingTalkValidationError,
)
from airflow_provider_dingtalk.hooks.work_notification import (
    MAX_DEPT_IDS_PER_CALL,
    MAX_USERIDS_PER_CALL,
    SEND_PATH,
    DingTalkWorkNotificationHook,
    ForbiddenUser,
    SendResult,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator, EmulatorTime
from airflow_provider_dingtalk.testing.emulator.endpoints.media import media
from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import work_notifications
from tests.helpers import FAST


def hook() -> DingTalkWorkNotificationHook:
    return DingTalkWorkNotificationHook(retry_policy=FAST)


def arrived(emulator: DingTalkEmulator) -> list[tuple[str, dict[str, Any]]]:
    return [(d.target, d.message) for d in emulator.inbox("work_notification")]


MESSAGES: list[tuple[m.Message, dict[str, Any]]] = [
    (m.Text(content="hello 你好"), {"msgtype": "text", "text": {"content": "hello 你好"}}),
    (
        m.Markdown(title="Run", text="# done"),
        {"msgtype": "markdown", "markdown": {"title": "Run", "text": "# done"}},
    ),
    (
        m.Link(title="t", text="x", message_url="https://example.com", pic_url="@lADOabc"),
        {
            "msgtype": "link",
            "link": {"messageUrl": "https://example.com", "title": "t", "text": "x", "picUrl": "@lADOabc"},
        },
    ),
    (m.Image(media_id="@img"), {"msgtype": "image", "image": {"media_id": "@img"}}),
    (m.Voice(media_id="@v", duration=7), {"msgtype": "voice", "voice": {"media_id": "@v", "duration": "7"}}),
    (m.File(media_id="@f"), {"msgtype": "file", "file": {"media_id": "@f"}}),
    (
        m.ActionCard(title="Card", text="body", single_title="Open", single_url="https://e.com"),
        {
            "msgtype": "action_card",
            "action_card": {
                "title": "Card",
                "markdown": "body",
                "single_title": "Open",
                "single_url": "https://e.com",
            },
        },
    ),
    (
        m.ActionCard(
            title="Card",
            text="body",
            buttons=[m.Button(title="A", url="https://a.com"), m.Button(title="B", url="https://b.com")],
            btn_orientation="1",
        ),
        {
            "msgtype": "action_card",
            "action_card": {
                "title": "Card",
                "markdown": "body",
                "btn_orientation": "1",
                "btn_json_list": [
                    {"title": "A", "action_url": "https://a.com"},
                    {"title": "B", "action_url": "https://b.com"},
                ],
            },
        },
    ),
    (
        m.OA(
            message_url="https://e.com",
            head_text="ETL",
            title="Load",
            form=[m.FormRow(key="Rows:", value="42")],
            rich=m.Rich(num="4.2", unit="s"),
            status_value="Running",
            status_bg="0xFFF65E5E",
        ),
        {
            "msgtype": "oa",
            "oa": {
                "message_url": "https://e.com",
                "head": {"bgcolor": "FFBBBBBB", "text": "ETL"},
                "status_bar": {"status_value": "Running", "status_bg": "0xFFF65E5E"},
                "body": {
                    "title": "Load",
                    "form": [{"key": "Rows:", "value": "42"}],
                    "rich": {"num": "4.2", "unit": "s"},
                },
            },
        },
    ),
]


@pytest.mark.parametrize(("msg", "expected"), MESSAGES, ids=lambda v: type(v).__name__)
def test_each_message_type_arrives(dingtalk_conn: DingTalkEmulator, msg: m.Message, expected: Any) -> None:
    task_ids = hook().send_work_notification(msg, userid_list=["user1", "user2"])
    assert len(task_ids) == 1
    assert arrived(dingtalk_conn) == [("user1", expected), ("user2", expected)]
    assert {d.meta["task_id"] for d in dingtalk_conn.inbox()} == set(task_ids)
    assert dingtalk_conn.inbox()[0].meta["agent_id"] == dingtalk_conn.app.agent_id


def test_raw_dict_and_departments(dingtalk_conn: DingTalkEmulator) -> None:
    raw = {"msgtype": "text", "text": {"content": "raw"}}
    hook().send_work_notification(raw, userid_list="user1,user2", dept_id_list=[7, "8"])
    # a department stands for its members (the emulator's department N is user<N>)
    assert [t for t, _ in arrived(dingtalk_conn)] == ["user1", "user2", "user7", "user8"]
    body = dingtalk_conn.requests(SEND_PATH)[0].body
    assert body["userid_list"] == "user1,user2" and body["dept_id_list"] == "7,8"
    assert body["agent_id"] == dingtalk_conn.app.agent_id


def test_12345_users_take_three_calls_a_minute_apart(
    dingtalk_conn: DingTalkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = EmulatorTime(dingtalk_conn)
    users = [f"user{i}" for i in range(12_345)]
    paced = DingTalkWorkNotificationHook(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep)
    task_ids = paced.send_work_notification(m.Text(content="all"), userid_list=users + users[:10])
    assert len(task_ids) == 3 and len(set(task_ids)) == 3
    sizes = [len(r.body["userid_list"].split(",")) for r in dingtalk_conn.requests(SEND_PATH)]
    assert sizes == [MAX_USERIDS_PER_CALL, MAX_USERIDS_PER_CALL, 2_345]
    # DingTalk takes 5,000 recipients a minute per app and filters the rest (143103, reported only by
    # getsendresult): the chunks go a minute apart, so everyone gets it, each user once
    assert sorted(d.target for d in dingtalk_conn.inbox()) == sorted(users)
    tasks = work_notifications(dingtalk_conn.state).tasks
    assert [f for t in task_ids for f in tasks[t].forbidden] == []
    assert 120 <= fake.slept <= 125
    out = capsys.readouterr().out
    assert "DingTalk takes 5,000 recipients a minute per app: waiting" in out
    # a batched send leaves one summary line with every task id in the task log
    assert f"sent in 3 calls to 12345 users and 0 departments: task ids {task_ids}" in out


def test_department_cap_and_dedup_keep_order(dingtalk_conn: DingTalkEmulator) -> None:
    depts = [*range(1, 1001), 3, 2, 1]
    fake = EmulatorTime(dingtalk_conn)
    paced = DingTalkWorkNotificationHook(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep)
    users = ["user2", "user1", "user2"]
    paced.send_work_notification(m.Text(content="d"), userid_list=users, dept_id_list=depts)
    bodies = [r.body for r in dingtalk_conn.requests(SEND_PATH)]
    assert [len(b["dept_id_list"].split(",")) for b in bodies] == [MAX_DEPT_IDS_PER_CALL] * 2
    assert bodies[0]["userid_list"] == "user2,user1" and "userid_list" not in bodies[1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "userid_list"),
        ({"userid_list": []}, "userid_list"),
        ({"userid_list": ["user1"], "to_all_user": True}, "to_all_user"),
        ({"dept_id_list": [1], "to_all_user": True}, "to_all_user"),
        ({"userid_list": ["a,b"]}, "userid_list"),
        ({"userid_list": [""]}, "userid_list"),
        ({"dept_id_list": ["x"]}, "dept_id_list"),
        ({"userid_list": ["user1"], "agent_id": "abc"}, "agent_id"),
    ],
)
def test_bad_recipients_send_nothing(dingtalk_conn: DingTalkEmulator, kwargs: Any, field: str) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        hook().send_work_notification(m.Text(content="x"), **kwargs)
    assert err.value.field == field
    assert dingtalk_conn.requests() == []


@pytest.mark.parametrize(
    "msg",
    [
        m.Text(content="x" * 3000),
        m.Image(path="/tmp/not-uploaded.png"),
        {"msgtype": "nope", "nope": {}},
        {"msgtype": "text"},
    ],
)
def test_bad_messages_send_nothing(dingtalk_conn: DingTalkEmulator, msg: Any) -> None:
    with pytest.raises(DingTalkValidationError):
        hook().send_work_notification(msg, userid_list=["user1"])
    assert dingtalk_conn.requests() == []


def test_agent_id_missing_everywhere(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = dingtalk_emulator.connection()
    del conn["schema"]
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", __import__("json").dumps(conn))
    with pytest.raises(
        DingTalkValidationError, match=r"set Agent ID \(the schema field\) of connection 'dingtalk_default'"
    ):
        hook().send_work_notification(m.Text(content="x"), userid_list=["user1"])
    assert dingtalk_emulator.requests() == []
    # given explicitly, it works
    hook().send_work_notification(
        m.Text(content="x"), userid_list=["user1"], agent_id=dingtalk_emulator.app.agent_id
    )
    assert len(dingtalk_emulator.inbox()) == 1


def test_foreign_agent_id_is_refused_by_dingtalk(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        hook().send_work_notification(m.Text(content="x"), userid_list=["user1"], agent_id=42)
    assert err.value.errcode == 40056 and err.value.hint
    assert dingtalk_conn.inbox() == []


def test_to_all_user_warns(dingtalk_conn: DingTalkEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    task_ids = hook().send_work_notification(m.Text(content="everyone"), to_all_user=True)
    assert len(task_ids) == 1
    warning = next(line for line in capsys.readouterr().out.splitlines() if "EVERY member" in line)
    assert "warning" in warning and "3 times a day" in warning
    assert arrived(dingtalk_conn) == [("@all", {"msgtype": "text", "text": {"content": "everyone"}})]
    assert dingtalk_conn.requests(SEND_PATH)[0].body["to_all_user"] is True


def test_partial_failure_names_sent_and_unsent(dingtalk_conn: DingTalkEmulator) -> None:
    users = [f"user{i}" for i in range(12_000)]
    dingtalk_conn.inject(SEND_PATH, errcode=60011, errmsg="no permission", skip=2)  # the 3rd call fails
    fake = EmulatorTime(dingtalk_conn)
    paced = DingTalkWorkNotificationHook(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(DingTalkPartialSendError) as err:
        paced.send_work_notification(m.Text(content="big"), userid_list=users)
    exc = err.value
    sent_task_ids = [r.response["task_id"] for r in dingtalk_conn.requests(SEND_PATH)[:2]]
    assert [s["task_id"] for s in exc.sent] == sent_task_ids
    assert [len(s["userid_list"]) for s in exc.sent] == [5000, 5000]
    assert exc.unsent == {"userid_list": users[10_000:], "dept_id_list": []}
    assert isinstance(exc.cause, DingTalkAPIError) and exc.cause.errcode == 60011
    assert all(str(t) in str(exc) for t in sent_task_ids) and "userid_list: 2000" in str(exc)
    assert [d.target for d in dingtalk_conn.inbox()] == users[:10_000]


def test_first_chunk_failing_raises_the_plain_error(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(SEND_PATH, errcode=60011, errmsg="no permission")
    with pytest.raises(DingTalkAPIError):
        hook().send_work_notification(m.Text(content="x"), userid_list=["user1"])


def test_send_result_reports_invalid_and_forbidden(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    msg = m.Text(content="daily report")
    h.send_work_notification(msg, userid_list=["user1"])
    [task_id] = h.send_work_notification(msg, userid_list=["user1", "user2", "ghost"], dept_id_list=[5000])
    result = h.get_send_result(task_id)
    assert result.invalid_user_id_list == ["ghost"]
    assert result.invalid_dept_id_list == [5000]
    assert result.forbidden_user_id_list == ["user1"]
    assert result.forbidden_list == [ForbiddenUser(userid="user1", code="143106", count=1)]
    assert result.unread_user_id_list == ["user2"] and result.undelivered
    assert SendResult.from_dict(result.to_dict()) == result
    assert [t for t, _ in arrived(dingtalk_conn)] == ["user1", "user2"]


def test_more_than_500_a_day_is_forbidden_143105(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    for i in range(500):
        h.send_work_notification({"msgtype": "text", "text": {"content": f"n{i}"}}, userid_list=["user9"])
    [task_id] = h.send_work_notification(m.Text(content="one too many"), userid_list=["user9"])
    result = h.get_send_result(task_id)
    assert result.forbidden_list == [ForbiddenUser(userid="user9", code="143105", count=500)]
    dingtalk_conn.advance(86_400)  # a new day
    [task_id] = h.send_work_notification(m.Text(content="one too many"), userid_list=["user9"])
    assert not h.get_send_result(task_id).undelivered


def test_progress_advances_with_emulator_time(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    [task_id] = h.send_work_notification(m.Text(content="x"), userid_list=["user1"])
    assert h.get_send_progress(task_id).status == 1 and not h.get_send_progress(task_id).done
    dingtalk_conn.advance(1)
    progress = h.get_send_progress(task_id)
    assert progress.done and progress.progress_in_percent == 100


def test_unknown_task_id_is_a_dingtalk_error(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        hook().get_send_result(123)
    assert err.value.errcode == 40035


def test_recall_and_status_bar(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    oa = m.OA(message_url="https://e.com", head_text="ETL", title="t", status_value="Running")
    [task_id] = h.send_work_notification(oa, userid_list=["user1"])
    h.update_status_bar(task_id, "Done", "0xFF00AA00")
    task = work_notifications(dingtalk_conn.state).tasks[task_id]
    assert task.status_bar == {"status_value": "Done", "status_bg": "0xFF00AA00"}
    assert dingtalk_conn.requests()[-1].body["agent_id"] == dingtalk_conn.app.agent_id
    h.recall(task_id)
    assert task.recalled
    assert dingtalk_conn.requests()[-1].body["msg_task_id"] == task_id
    with pytest.raises(DingTalkValidationError):
        h.update_status_bar(task_id, "Done", "red")


def test_upload_media(dingtalk_conn: DingTalkEmulator, tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(b"\x89PNG fake image")
    h = hook()
    media_id = h.upload_media(path, "image")
    upload = media(dingtalk_conn.state).uploads[media_id]
    assert upload.content == b"\x89PNG fake image" and upload.filename == "chart.png"
    sent = h.upload_message_media(m.Image(path=str(path)))
    assert isinstance(sent, m.Image) and sent.media_id is not None and sent.path is None
    h.send_work_notification(sent, userid_list=["user1"])
    assert arrived(dingtalk_conn)[0][1]["image"]["media_id"] == sent.media_id


@pytest.mark.parametrize(
    ("size", "media_type", "match"),
    [(1024 * 1024 + 1, "image", "too large"), (0, "file", "empty"), (10, "video", "media_type")],
)
def test_upload_checks_before_sending(
    dingtalk_conn: DingTalkEmulator, tmp_path: Path, size: int, media_type: str, match: str
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * size)
    with pytest.raises(DingTalkValidationError, match=match):
        hook().upload_media(path, media_type)
    with pytest.raises(DingTalkValidationError, match="not a readable file"):
        hook().upload_media(tmp_path / "missing", "file")
    assert dingtalk_conn.requests() == []
