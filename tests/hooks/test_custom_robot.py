"""DingTalkCustomRobotHook against the emulator's custom robot: signing, limits, pacing, retries."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook, robot_sign
from airflow_provider_dingtalk.messages import (
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    Link,
    Markdown,
    Mentions,
    Text,
)
from airflow_provider_dingtalk.robot_pacer import RobotBusyError
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator, EmulatorTime
from tests.helpers import FAST

SEND = "/robot/send"
CONN_ENV = "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"


def hook(emulator: DingTalkEmulator, **kwargs: object) -> tuple[DingTalkCustomRobotHook, EmulatorTime]:
    fake = EmulatorTime(emulator)
    return DingTalkCustomRobotHook(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep, **kwargs), fake  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timestamp", "secret", "sign"),
    [
        (1445827045067, "SECtest", "D6HN97DlVBZMK3gvO5M2OEVmYmQEG0KjydgfwAij8Ok%3D"),
        (1700000000000, "this is secret", "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D"),
    ],
)
def test_signing_vectors(timestamp: int, secret: str, sign: str) -> None:
    assert robot_sign(secret, timestamp) == sign


def test_signed_send_arrives_with_every_message_type(robot_conn: DingTalkEmulator) -> None:
    h, _ = hook(robot_conn)
    messages = [
        Text(content="build ok"),
        Markdown(title="Build", text="## ok"),
        Link(title="Run", text="see", message_url="https://example.com/run"),
        ActionCard(title="Card", text="t", single_title="Open", single_url="https://example.com"),
        ActionCard(title="Card", text="t", buttons=[Button(title="A", url="https://a.example.com")]),
        FeedCard(
            links=[FeedLink(title="F", message_url="https://f.example.com", pic_url="https://p.example.com")]
        ),
    ]
    for message in messages:
        h.send(message)
    got = [d.message for d in robot_conn.inbox("custom_robot")]
    assert [m["msgtype"] for m in got] == ["text", "markdown", "link", "actionCard", "actionCard", "feedCard"]
    assert got[0]["text"]["content"] == "build ok"
    assert got[4]["actionCard"]["btns"] == [{"title": "A", "actionURL": "https://a.example.com"}]
    assert {d.target for d in robot_conn.inbox("custom_robot")} == {"default"}
    assert all(r.response["errcode"] == 0 for r in robot_conn.requests(SEND))


def test_pasted_webhook_url_gives_token_and_host(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot("unsigned", secret=False)
    url = f"{dingtalk_emulator.url}/robot/send?access_token={robot.token}"
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "dingtalkcustomrobot", "password": url}))
    h, _ = hook(dingtalk_emulator)
    h.send(Text(content="hi"))
    assert [d.target for d in dingtalk_emulator.inbox("custom_robot")] == ["unsigned"]


def test_mentions_arrive_and_appear_in_the_text(robot_conn: DingTalkEmulator) -> None:
    h, _ = hook(robot_conn)
    h.send(
        Text(content="disk full, @user1 please look"),
        mentions=Mentions(mobiles=["13800000000"], user_ids=["user1"]),
    )
    (delivered,) = robot_conn.inbox("custom_robot")
    assert delivered.message["at"] == {"atMobiles": ["13800000000"], "atUserIds": ["user1"], "isAtAll": False}
    content = delivered.message["text"]["content"]
    assert "@13800000000" in content and content.count("@user1") == 1


def test_unsigned_request_to_a_signing_robot_is_refused_with_a_fix(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(
        CONN_ENV,
        json.dumps(
            {"conn_type": "dingtalkcustomrobot", "host": dingtalk_emulator.url, "password": robot.token}
        ),
    )
    h, _ = hook(dingtalk_emulator)
    with pytest.raises(DingTalkAPIError) as err:
        h.send(Text(content="x"))
    assert err.value.errcode == 310000 and "invalid timestamp" in err.value.errmsg
    assert "secret" in (err.value.hint or "")
    assert dingtalk_emulator.inbox("custom_robot") == []


def test_wrong_secret_is_refused_with_a_fix(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(CONN_ENV, dingtalk_emulator.webhook_connection_json(robot, secret="SECwrong"))
    h, _ = hook(dingtalk_emulator)
    with pytest.raises(DingTalkAPIError) as err:
        h.send(Text(content="x"))
    assert err.value.errcode == 310000 and "sign not match" in err.value.errmsg
    assert "signature does not match" in str(err.value)


def test_double_encoded_sign_is_refused(dingtalk_emulator: DingTalkEmulator) -> None:
    robot = dingtalk_emulator.add_robot()
    assert robot.secret
    ts = int(dingtalk_emulator.state.clock.now() * 1000)
    sign = robot_sign(robot.secret, ts)
    body: Any = {"msgtype": "text", "text": {"content": "x"}}
    base = f"{dingtalk_emulator.url}/robot/send?access_token={robot.token}&timestamp={ts}"
    twice = requests.post(f"{base}&sign={quote(sign, safe='')}", json=body, timeout=5).json()
    once = requests.post(f"{base}&sign={sign}", json=body, timeout=5).json()
    assert (twice["errcode"], twice["errmsg"].split(",")[0]) == (310000, "sign not match")
    assert once["errcode"] == 0
    stale = requests.post(
        f"{dingtalk_emulator.url}/robot/send?access_token={robot.token}&timestamp={ts - 3_700_000}"
        f"&sign={robot_sign(robot.secret, ts - 3_700_000)}",
        json=body,
        timeout=5,
    ).json()
    assert stale["errcode"] == 310000 and "invalid timestamp" in stale["errmsg"]


def test_keyword_setting_and_unknown_token_give_fixes(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = dingtalk_emulator.add_robot("kw", secret=False, keywords=("Airflow",))
    monkeypatch.setenv(CONN_ENV, dingtalk_emulator.webhook_connection_json(robot))
    h, _ = hook(dingtalk_emulator)
    with pytest.raises(DingTalkAPIError) as err:
        h.send(Text(content="no keyword here"))
    assert err.value.errcode == 310000 and "keywords" in (err.value.hint or "")
    h.send(Markdown(title="Airflow", text="ok"))
    assert len(dingtalk_emulator.inbox("custom_robot")) == 1

    monkeypatch.setenv(
        CONN_ENV,
        json.dumps({"conn_type": "dingtalkcustomrobot", "host": dingtalk_emulator.url, "password": "nope"}),
    )
    h, _ = hook(dingtalk_emulator)
    with pytest.raises(DingTalkAPIError) as err:
        h.send(Text(content="x"))
    assert err.value.errcode == 300001 and "webhook URL" in (err.value.hint or "")


def test_body_limit_is_checked_before_sending_and_460101_has_a_hint(robot_conn: DingTalkEmulator) -> None:
    h, _ = hook(robot_conn)
    with pytest.raises(DingTalkValidationError) as err:
        h.send(Text(content="字" * 7000))  # 21,000 bytes of UTF-8
    assert err.value.limit == 20000
    assert robot_conn.calls(SEND) == 0
    robot_conn.inject(SEND, errcode=460101, errmsg="message too long, exceed 20000 bytes")
    with pytest.raises(DingTalkAPIError) as api_err:
        h.send(Text(content="x"))
    assert "20,000 bytes" in (api_err.value.hint or "")


def test_a_burst_of_100_is_paced_and_none_rejected(robot_conn: DingTalkEmulator) -> None:
    h, fake = hook(robot_conn)
    for i in range(100):
        h.send(Text(content=f"message {i}"))
    assert len(robot_conn.inbox("custom_robot")) == 100
    records = robot_conn.requests(SEND)
    assert [r.response["errcode"] for r in records] == [0] * 100
    times = sorted(r.time for r in records)
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 20
    assert fake.slept >= 4 * 60  # 100 messages at 20 a minute


def test_130101_waits_for_the_block_then_retries(robot_conn: DingTalkEmulator) -> None:
    h, fake = hook(robot_conn)
    robot_conn.inject(SEND, errcode=130101, errmsg="send too fast, exceed 20 times per minute")
    h.send(Text(content="after the block"))
    assert 600 <= fake.slept < 700  # DingTalk's 10-minute block, waited once
    assert [r.response["errcode"] for r in robot_conn.requests(SEND)] == [130101, 0]
    assert len(robot_conn.inbox("custom_robot")) == 1


def test_130101_wait_is_bounded(robot_conn: DingTalkEmulator) -> None:
    h, _ = hook(robot_conn, max_wait=900)
    robot_conn.inject(SEND, errcode=130101, errmsg="send too fast", times=3)
    with pytest.raises(RobotBusyError):
        h.send(Text(content="x"))
    assert robot_conn.calls(SEND) == 2


def test_msg_uuid_is_reused_after_a_lost_answer_and_shown_once(robot_conn: DingTalkEmulator) -> None:
    h, _ = hook(robot_conn)
    robot_conn.inject(SEND, drop="after")
    h.send(Text(content="exactly once"))
    uuids = [r.body["msgUuid"] for r in robot_conn.requests(SEND)]
    assert len(uuids) == 2 and uuids[0] == uuids[1]
    assert len(robot_conn.inbox("custom_robot")) == 1
    h.send(Text(content="exactly once"))  # a new message gets a new uuid
    assert len(robot_conn.inbox("custom_robot")) == 2


def test_token_and_secret_never_leak(
    dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    robot = dingtalk_emulator.add_robot()
    assert robot.secret
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(CONN_ENV, dingtalk_emulator.webhook_connection_json(robot))
    h, _ = hook(dingtalk_emulator)
    h.send(Text(content="ok"))
    errors = []
    dingtalk_emulator.inject(SEND, drop="before", times=FAST.attempts)
    with pytest.raises(Exception) as transport:
        h.send(Text(content="lost"))
    errors.append(str(transport.value))
    monkeypatch.setenv(
        CONN_ENV, dingtalk_emulator.webhook_connection_json(robot, secret="SECwrong" + robot.secret)
    )
    with pytest.raises(DingTalkAPIError) as api:
        hook(dingtalk_emulator)[0].send(Text(content="x"))
    errors.append(str(api.value))
    logged = json.dumps([r.__dict__ for r in dingtalk_emulator.requests()], default=str)
    for text in [caplog.text, logged, *errors, repr(h.robot)]:
        assert robot.token not in text and robot.secret not in text
    assert "access_token" in logged and "sign" in logged  # the fields are there, masked
