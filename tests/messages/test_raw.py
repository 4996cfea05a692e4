"""Raw DingTalk dicts, in each dialect, read into the one message model and sent through the hooks.

What a user wrote as DingTalk documents it arrives at the strict emulator with nothing lost or changed
(the renderer may add DingTalk's defaults); what DingTalk would silently drop or refuse is refused
before anything is sent, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
from airflow_provider_dingtalk.messages import (
    OA,
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    FormRow,
    Image,
    Link,
    Markdown,
    Message,
    Rich,
    Text,
    Voice,
    parse_app_robot,
    parse_custom_robot,
    parse_work_notification,
    to_app_robot,
    to_custom_robot,
    to_work_notification,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST

URL = "https://example.com/run"
PIC = "https://example.com/p.png"


def kept(written: Any, arrived: Any) -> bool:
    """Everything ``written`` holds is in ``arrived`` unchanged; ``arrived`` may hold more keys."""
    if isinstance(written, dict):
        return isinstance(arrived, dict) and all(
            k in arrived and kept(v, arrived[k]) for k, v in written.items()
        )
    if isinstance(written, list):
        return (
            isinstance(arrived, list)
            and len(written) == len(arrived)
            and all(kept(w, a) for w, a in zip(written, arrived, strict=True))
        )
    return bool(written == arrived)


# ---------------------------------------------------------------- work notifications (asyncsend_v2 msg)

WORK_NOTIFICATIONS: list[dict[str, Any]] = [
    {"msgtype": "text", "text": {"content": "月度账单已生成"}},
    {"msgtype": "markdown", "markdown": {"title": "Run", "text": "## done"}},
    {"msgtype": "link", "link": {"messageUrl": URL, "picUrl": "@lALOabc", "title": "T", "text": "x"}},
    {"msgtype": "image", "image": {"media_id": "@lADOimg"}},
    {"msgtype": "voice", "voice": {"media_id": "@lATOv", "duration": "10"}},
    {"msgtype": "file", "file": {"media_id": "@lAJOf"}},
    {
        "msgtype": "action_card",
        "action_card": {"title": "T", "markdown": "**x**", "single_title": "查看详情", "single_url": URL},
    },
    {
        "msgtype": "action_card",
        "action_card": {
            "title": "T",
            "markdown": "x",
            "btn_orientation": "1",
            "btn_json_list": [{"title": "A", "action_url": URL}, {"title": "B", "action_url": PIC}],
        },
    },
    {
        "msgtype": "oa",
        "oa": {
            "message_url": "http://dingtalk.com",
            "pc_message_url": "dingtalk://dingtalkclient/page/link?url=x",
            "head": {"bgcolor": "FFBBBBBB", "text": "头部标题"},
            "status_bar": {"status_value": "进行中", "status_bg": "0xFFF65E5E"},
            "body": {
                "title": "正文标题",
                "form": [{"key": "姓名:", "value": "张三"}],
                "rich": {"num": "15.6", "unit": "元"},
                "content": "大段文本",
                "image": "@lADOADmaWMzazQKA",
                "file_count": "3",
                "author": "李四 ",
            },
        },
    },
]


@pytest.mark.parametrize("raw", WORK_NOTIFICATIONS, ids=lambda r: r["msgtype"])
def test_raw_work_notifications_arrive_as_written(
    dingtalk_conn: DingTalkEmulator, raw: dict[str, Any]
) -> None:
    DingTalkWorkNotificationHook(retry_policy=FAST).send_work_notification(raw, userid_list=["user1"])
    (delivered,) = dingtalk_conn.inbox("work_notification")
    assert kept(raw, delivered.message), delivered.message


# ---------------------------------------------------------------- custom robot webhook bodies

CUSTOM_ROBOT: list[dict[str, Any]] = [
    {"msgtype": "text", "text": {"content": "hi @13800001111"}, "at": {"atMobiles": ["13800001111"]}},
    {
        "msgtype": "markdown",
        "markdown": {"title": "杭州天气", "text": "#### 杭州天气 @user1"},
        "at": {"atUserIds": ["user1"], "isAtAll": False},
    },
    {"msgtype": "link", "link": {"title": "T", "text": "x", "messageUrl": URL, "picUrl": PIC}},
    {
        "msgtype": "actionCard",
        "actionCard": {
            "title": "T",
            "text": "x",
            "singleTitle": "阅读全文",
            "singleURL": URL,
            "hideAvatar": "1",
        },
    },
    {
        "msgtype": "actionCard",
        "actionCard": {
            "title": "T",
            "text": "x",
            "btnOrientation": "0",
            "btns": [{"title": "内容不错", "actionURL": URL}, {"title": "不感兴趣", "actionURL": PIC}],
        },
    },
    {"msgtype": "feedCard", "feedCard": {"links": [{"title": "F", "messageURL": URL, "picURL": PIC}] * 2}},
    {"msgtype": "text", "text": {"content": "once"}, "msgUuid": "run-42"},
]


@pytest.mark.parametrize("raw", CUSTOM_ROBOT, ids=lambda r: r["msgtype"])
def test_raw_custom_robot_bodies_arrive_as_written(robot_conn: DingTalkEmulator, raw: dict[str, Any]) -> None:
    DingTalkCustomRobotHook(retry_policy=FAST).send(raw)
    (delivered,) = robot_conn.inbox("custom_robot")
    assert kept(raw, delivered.message), delivered.message


def test_raw_custom_robot_mentions_are_given_once(robot_conn: DingTalkEmulator) -> None:
    from airflow_provider_dingtalk.messages import Mentions

    with pytest.raises(DingTalkValidationError, match="one place") as err:
        DingTalkCustomRobotHook(retry_policy=FAST).send(CUSTOM_ROBOT[0], mentions=Mentions(at_all=True))
    assert err.value.field == "mentions"
    assert robot_conn.requests("/robot/send") == []


# ---------------------------------------------------------------- app robot msgKey / msgParam

APP_ROBOT: list[dict[str, Any]] = [
    {"msgKey": "sampleText", "msgParam": {"content": "hi"}},
    {"msgKey": "sampleText", "msgParam": '{"content": "as the API carries it"}'},
    {"msgKey": "sampleMarkdown", "msgParam": {"title": "T", "text": "## x"}},
    {"msgKey": "sampleLink", "msgParam": {"text": "x", "title": "T", "picUrl": PIC, "messageUrl": URL}},
    {"msgKey": "sampleImageMsg", "msgParam": {"photoURL": PIC}},
    {"msgKey": "sampleImageMsg", "msgParam": {"photoURL": "@lADOimg"}},
    {
        "msgKey": "sampleActionCard",
        "msgParam": {"title": "T", "text": "x", "singleTitle": "Open", "singleURL": URL},
    },
    {
        "msgKey": "sampleActionCard3",
        "msgParam": {"title": "T", "text": "x"}
        | {
            f"action{k}{n}": (f"B{n}" if k == "Title" else f"{URL}/{n}")
            for n in (1, 2, 3)
            for k in ("Title", "URL")
        },
    },
    {
        "msgKey": "sampleActionCard6",
        "msgParam": {"title": "T", "text": "x", "buttonTitle1": "Yes", "buttonUrl1": URL}
        | {"buttonTitle2": "No", "buttonUrl2": PIC},
    },
]


@pytest.mark.parametrize("raw", APP_ROBOT, ids=lambda r: r["msgKey"])
def test_raw_app_robot_messages_arrive_as_written(
    dingtalk_conn: DingTalkEmulator, raw: dict[str, Any]
) -> None:
    hook = DingTalkAppRobotHook(retry_policy=FAST)
    hook.send_robot_group_message(raw, open_conversation_id="cid1")
    hook.send_robot_direct_message(raw, user_ids=["user1"])
    param = raw["msgParam"] if isinstance(raw["msgParam"], dict) else json.loads(raw["msgParam"])
    written = {"msgKey": raw["msgKey"], "msgParam": param}
    assert [d.message for d in dingtalk_conn.inbox("app_robot_group")] == [written]
    assert [d.message for d in dingtalk_conn.inbox("app_robot_oto")] == [written]


# ---------------------------------------------------------------- refused before anything is sent

Send = Callable[[dict[str, Any]], object]


def _wn(raw: dict[str, Any]) -> object:
    return DingTalkWorkNotificationHook(retry_policy=FAST).send_work_notification(raw, userid_list=["user1"])


def _robot(raw: dict[str, Any]) -> object:
    DingTalkCustomRobotHook(retry_policy=FAST).send(raw)
    return None


def _app(raw: dict[str, Any]) -> object:
    return DingTalkAppRobotHook(retry_policy=FAST).send_robot_group_message(raw, open_conversation_id="cid1")


LONG = "t" * 65


@pytest.mark.parametrize(
    ("send", "raw", "field", "says"),
    [
        # a misspelt key: DingTalk would send the message without it
        (_wn, {"msgtype": "text", "text": {"contnet": "hi"}}, "msg.text.contnet", "did you mean 'content'"),
        (
            _robot,
            {"msgtype": "text", "text": {"content": "hi"}, "at": {"atMobile": ["1"]}},
            "at.atMobile",
            "'atMobiles'",
        ),
        (_robot, {"msgtype": "markdown", "markdown": {"title": "T", "text": "x"}, "At": {}}, "At", "'at'"),
        (_app, {"msgKey": "sampleText", "msgParam": {"contents": "hi"}}, "msgParam.contents", "'content'"),
        # another dialect's spelling
        (_wn, {"msgtype": "actionCard", "actionCard": {}}, "msg.msgtype", "spells it 'action_card'"),
        (_robot, {"msgtype": "action_card", "action_card": {}}, "msgtype", "spells it 'actionCard'"),
        (
            _robot,
            {"msgtype": "actionCard", "actionCard": {"title": "T", "text": "x", "single_url": URL}},
            "actionCard.single_url",
            "'singleURL'",
        ),
        (_app, {"msgtype": "text", "text": {"content": "hi"}}, "msgKey", "msgtype dict"),
        # an action card without buttons
        (
            _wn,
            {"msgtype": "action_card", "action_card": {"title": "T", "markdown": "x"}},
            "msg.action_card.btn_json_list",
            "at least one button",
        ),
        (
            _robot,
            {"msgtype": "actionCard", "actionCard": {"title": "T", "text": "x", "btns": []}},
            "actionCard.btns",
            "at least one button",
        ),
        # an over-long title
        (
            _wn,
            {
                "msgtype": "action_card",
                "action_card": {"title": LONG, "markdown": "x", "single_title": "a", "single_url": URL},
            },
            "msg.action_card.title",
            "64",
        ),
        (
            _robot,
            {
                "msgtype": "actionCard",
                "actionCard": {"title": LONG, "text": "x", "singleTitle": "a", "singleURL": URL},
            },
            "actionCard.title",
            "64",
        ),
        (
            _app,
            {
                "msgKey": "sampleActionCard",
                "msgParam": {"title": LONG, "text": "x", "singleTitle": "a", "singleURL": URL},
            },
            "msgParam.title",
            "64",
        ),
        # a required field missing, a wrong type
        (
            _wn,
            {"msgtype": "link", "link": {"messageUrl": URL, "title": "T", "text": "x"}},
            "msg.link.picUrl",
            "required",
        ),
        (
            _wn,
            {"msgtype": "voice", "voice": {"media_id": "@v", "duration": "ten"}},
            "msg.voice.duration",
            "whole",
        ),
        (_robot, {"msgtype": "text", "text": {"content": 42}}, "text.content", "must be a string"),
        (
            _robot,
            {"msgtype": "text", "text": {"content": "x"}, "at": {"isAtAll": "nope"}},
            "at.isAtAll",
            "true or false",
        ),
        (
            _app,
            {
                "msgKey": "sampleActionCard2",
                "msgParam": {"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": URL},
            },
            "msgParam.actionTitle2",
            "required",
        ),
        (_app, {"msgKey": "sampleText"}, "msgParam", "required"),
        (_app, {"msgKey": "sampleText", "msgParam": "not json"}, "msgParam", "JSON"),
        # what the channel, or the model, cannot express
        (_robot, {"msgtype": "oa", "oa": {}}, "msgtype", "send it as a work notification"),
        (_wn, {"msgtype": "feedCard", "feedCard": {}}, "msg.msgtype", "only the custom robot"),
        (_app, {"msgKey": "sampleFile", "msgParam": {"mediaId": "@f"}}, "msgKey", "model cannot express"),
        (_app, {"msgKey": "sampleVideo", "msgParam": {}}, "msgKey", "model cannot express"),
        (
            _robot,
            {
                "msgtype": "link",
                "link": {"title": "T", "text": "x", "messageUrl": URL},
                "at": {"isAtAll": True},
            },
            "at",
            "only Text and Markdown",
        ),
        # over the byte limit
        (_wn, {"msgtype": "text", "text": {"content": "é" * 1100}}, "msg", "too large"),
    ],
)
def test_raw_dicts_are_refused_before_sending(
    dingtalk_airflow: DingTalkEmulator, send: Send, raw: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(DingTalkValidationError, match=says) as err:
        send(raw)
    assert err.value.field == field
    assert dingtalk_airflow.inbox() == []
    sends = [r for r in dingtalk_airflow.requests() if "token" not in r.path.lower()]
    assert sends == []


# ---------------------------------------------------------------- each parser inverts its renderer

TYPED: list[tuple[Callable[[Message], Any], Callable[[Any], Any], Message]] = [
    *[
        (to_work_notification, parse_work_notification, m)
        for m in (
            Text(content="hi"),
            Link(title="T", text="x", message_url=URL, pic_url="@lALOabc"),
            Voice(media_id="@v", duration=59),
            ActionCard(title="T", text="x", buttons=[Button(title="A", url=URL)], btn_orientation="1"),
            OA(
                message_url=URL,
                head_text="h",
                form=[FormRow(key="k", value="v")],
                rich=Rich(num="1"),
                file_count=0,
            ),
        )
    ],
    *[
        (lambda m: to_custom_robot(m), lambda raw: parse_custom_robot(raw).message, m)
        for m in (
            Markdown(title="T", text="x"),
            Link(title="T", text="x", message_url=URL),
            ActionCard(title="T", text="x", single_title="S", single_url=URL, hide_avatar=True),
            FeedCard(links=[FeedLink(title="F", message_url=URL, pic_url=PIC)]),
        )
    ],
    *[
        (lambda m: dict(zip(("msgKey", "msgParam"), to_app_robot(m), strict=True)), parse_app_robot, m)
        for m in (
            Image(pic_url=PIC),
            Image(media_id="@img"),
            ActionCard(title="T", text="x", buttons=[Button(title=f"B{n}", url=URL) for n in range(5)]),
        )
    ],
]


@pytest.mark.parametrize(("render", "parse", "message"), TYPED, ids=lambda x: type(x).__name__)
def test_parsing_a_rendered_message_gives_the_message_back(
    render: Callable[[Message], Any], parse: Callable[[Any], Message], message: Message
) -> None:
    assert parse(render(message)) == message
