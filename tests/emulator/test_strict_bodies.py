"""The emulator checks each message body as DingTalk does, in all three dialects, over real HTTP.

Each wrong body is refused with that API's error naming the field; the renderers' output for every
message type is accepted, which is the proof that the provider sends what DingTalk takes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk.messages import (
    OA,
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    File,
    FormRow,
    Image,
    Link,
    Markdown,
    Mentions,
    Message,
    Rich,
    Text,
    Voice,
    to_app_robot,
    to_custom_robot,
    to_work_notification,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

URL = "https://example.com/dag"
PIC = "https://example.com/p.png"


def buttons(n: int) -> list[Button]:
    return [Button(title=f"B{i}", url=f"https://example.com/{i}") for i in range(1, n + 1)]


def oapi_token(emulator: DingTalkEmulator) -> str:
    app = emulator.app
    answer = requests.get(
        f"{emulator.url}/gettoken", params={"appkey": app.app_key, "appsecret": app.app_secret}, timeout=5
    )
    return str(answer.json()["access_token"])


def v1_token(emulator: DingTalkEmulator) -> str:
    app = emulator.app
    body = {"appKey": app.app_key, "appSecret": app.app_secret}
    return str(
        requests.post(f"{emulator.url}/v1.0/oauth2/accessToken", json=body, timeout=5).json()["accessToken"]
    )


def send_work_notification(emulator: DingTalkEmulator, msg: Any) -> Any:
    body = {"agent_id": emulator.app.agent_id, "userid_list": "user1", "msg": msg}
    return requests.post(
        f"{emulator.url}/topapi/message/corpconversation/asyncsend_v2",
        params={"access_token": oapi_token(emulator)},
        json=body,
        timeout=5,
    ).json()


def send_custom_robot(emulator: DingTalkEmulator, body: Any) -> Any:
    robot = emulator.add_robot("strict", secret=False)
    return requests.post(
        f"{emulator.url}/robot/send", params={"access_token": robot.token}, json=body, timeout=5
    ).json()


def send_app_robot(emulator: DingTalkEmulator, key: str, param: Any) -> requests.Response:
    body = {
        "robotCode": emulator.app.app_key,
        "openConversationId": "cid-strict",
        "msgKey": key,
        "msgParam": param if isinstance(param, str) else json.dumps(param),
    }
    headers = {"x-acs-dingtalk-access-token": v1_token(emulator)}
    return requests.post(
        f"{emulator.url}/v1.0/robot/groupMessages/send", json=body, headers=headers, timeout=5
    )


_OA = OA(
    message_url="http://dingtalk.com",
    pc_message_url="dingtalk://dingtalkclient/page/link?url=x",
    head_text="头部标题",
    status_value="进行中",
    status_bg="0xFFF65E5E",
    title="正文标题",
    form=[FormRow(key="姓名:", value="张三")],
    rich=Rich(num="15.6", unit="元"),
    content="c",
    image="@lADOADmaWMzazQKA",
    file_count=3,
    author="李四 ",
)

# ---------------------------------------------------------------- the renderers' output is accepted

WORK_NOTIFICATIONS: list[Message] = [
    Text(content="hi"),
    Markdown(title="T", text="## x"),
    Link(title="T", text="x", message_url=URL, pic_url="@lALOabc"),
    Image(media_id="@img"),
    Voice(media_id="@v", duration=10),
    File(media_id="@f"),
    ActionCard(title="T", text="**x**", single_title="查看详情", single_url=URL),
    ActionCard(title="T", text="x", buttons=buttons(2), btn_orientation="1"),
    _OA,
    OA(message_url=URL, head_text="h", content="c"),
]


@pytest.mark.parametrize("message", WORK_NOTIFICATIONS, ids=lambda m: type(m).__name__)
def test_work_notification_renderings_are_accepted(
    dingtalk_emulator: DingTalkEmulator, message: Message
) -> None:
    msg = to_work_notification(message)
    assert send_work_notification(dingtalk_emulator, msg)["errcode"] == 0
    assert [d.message for d in dingtalk_emulator.inbox("work_notification")] == [msg]


CUSTOM_ROBOT: list[tuple[Message, Mentions | None]] = [
    (Text(content="hi @u1"), Mentions(user_ids=["u1"], mobiles=["13800001111"], at_all=True)),
    (Markdown(title="T", text="## x"), Mentions(user_ids=["u1"])),
    (Link(title="T", text="x", message_url=URL, pic_url=PIC), None),
    (Link(title="T", text="x", message_url=URL), None),
    (ActionCard(title="T", text="x", single_title="阅读全文", single_url=URL, hide_avatar=True), None),
    (ActionCard(title="T", text="x", buttons=buttons(3)), None),
    (FeedCard(links=[FeedLink(title="F", message_url=URL, pic_url=PIC)] * 2), None),
]


@pytest.mark.parametrize(("message", "mentions"), CUSTOM_ROBOT, ids=lambda m: type(m).__name__)
def test_custom_robot_renderings_are_accepted(
    dingtalk_emulator: DingTalkEmulator, message: Message, mentions: Mentions | None
) -> None:
    body = to_custom_robot(message, mentions=mentions, msg_uuid="run-1")
    assert send_custom_robot(dingtalk_emulator, body)["errcode"] == 0
    assert [d.message for d in dingtalk_emulator.inbox("custom_robot")] == [body]


APP_ROBOT: list[Message] = [
    Text(content="hi"),
    Markdown(title="T", text="x"),
    Link(title="T", text="x", message_url=URL, pic_url=PIC),
    Image(pic_url=PIC),
    Image(media_id="@img"),
    ActionCard(title="T", text="x", single_title="Open", single_url=URL),
    ActionCard(title="T", text="x", buttons=buttons(1)),
    ActionCard(title="T", text="x", buttons=buttons(2), btn_orientation="1"),
    *[ActionCard(title="T", text="x", buttons=buttons(n)) for n in (2, 3, 4, 5)],
]


@pytest.mark.parametrize("message", APP_ROBOT, ids=lambda m: type(m).__name__)
def test_app_robot_renderings_are_accepted(dingtalk_emulator: DingTalkEmulator, message: Message) -> None:
    key, param = to_app_robot(message)
    answer = send_app_robot(dingtalk_emulator, key, param)
    assert answer.status_code == 200, answer.text
    assert [d.message for d in dingtalk_emulator.inbox("app_robot_group")] == [
        {"msgKey": key, "msgParam": json.loads(param)}
    ]


# ---------------------------------------------------------------- wrong bodies get DingTalk's error


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"msgtype": "text", "text": {"contents": "typo"}}, "msg.text.content"),
        ({"msgtype": "text", "text": {"content": "x", "title": "extra"}}, "msg.text.title"),
        ({"msgtype": "text", "text": {"content": "x"}, "markdown": {}}, "msg.markdown"),
        ({"msgtype": "markdown", "markdown": {"title": "T"}}, "msg.markdown.text"),
        (
            {"msgtype": "link", "link": {"message_url": URL, "picUrl": "@p", "title": "T", "text": "x"}},
            "msg.link.messageUrl",
        ),
        ({"msgtype": "link", "link": {"messageUrl": URL, "title": "T", "text": "x"}}, "msg.link.picUrl"),
        ({"msgtype": "voice", "voice": {"media_id": "@v", "duration": "60"}}, "msg.voice.duration"),
        ({"msgtype": "voice", "voice": {"media_id": "@v", "duration": "ten"}}, "msg.voice.duration"),
        ({"msgtype": "image", "image": {"mediaId": "@i"}}, "msg.image.media_id"),
        (
            {
                "msgtype": "action_card",
                "action_card": {"title": "T", "markdown": "x", "single_title": "S", "singleURL": URL},
            },
            "msg.action_card.single_url",
        ),
        (
            {
                "msgtype": "action_card",
                "action_card": {"title": "T" * 65, "markdown": "x", "single_title": "S", "single_url": URL},
            },
            "msg.action_card.title",
        ),
        (
            {
                "msgtype": "action_card",
                "action_card": {
                    "title": "T",
                    "markdown": "x",
                    "btn_orientation": "2",
                    "btn_json_list": [{"title": "b", "action_url": URL}],
                },
            },
            "msg.action_card.btn_orientation",
        ),
        (
            {
                "msgtype": "action_card",
                "action_card": {
                    "title": "T",
                    "markdown": "x",
                    "btn_orientation": "0",
                    "btn_json_list": [{"title": "b", "actionURL": URL}],
                },
            },
            "msg.action_card.btn_json_list[0].action_url",
        ),
        (
            {"msgtype": "action_card", "action_card": {"title": "T", "markdown": "x"}},
            "msg.action_card.single_title",
        ),
        (
            {
                "msgtype": "oa",
                "oa": {"message_url": URL, "head": {"bgcolor": "0xFFBBBBBB", "text": "h"}, "body": {}},
            },
            "msg.oa.head.bgcolor",
        ),
        (
            {
                "msgtype": "oa",
                "oa": {"message_url": URL, "head": {"bgcolor": "FFBBBBBB", "text": "头" * 11}, "body": {}},
            },
            "msg.oa.head.text",
        ),
        (
            {"msgtype": "oa", "oa": {"message_url": URL, "head": {"bgcolor": "FFBBBBBB", "text": "h"}}},
            "msg.oa.body",
        ),
        (
            {
                "msgtype": "oa",
                "oa": {
                    "message_url": URL,
                    "head": {"bgcolor": "FFBBBBBB", "text": "h"},
                    "body": {"form": [{"key": "k"}]},
                },
            },
            "msg.oa.body.form[0].value",
        ),
        ({"msgtype": "actionCard", "actionCard": {}}, "msg.msgtype"),
    ],
)
def test_work_notification_refuses_a_wrong_msg(
    dingtalk_emulator: DingTalkEmulator, msg: Any, field: str
) -> None:
    answer = send_work_notification(dingtalk_emulator, msg)
    assert answer["errcode"] == 40035 and "task_id" not in answer
    assert field in answer["errmsg"]
    assert dingtalk_emulator.inbox() == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"msgtype": "markdown", "markdown": {"title": "T"}}, "markdown --》 text 缺失"),
        ({"msgtype": "text", "text": {"content": "x"}, "at": {"atUserIds": "u1"}}, "at --》 atUserIds"),
        ({"msgtype": "text", "text": {"content": "x"}, "at": {"isAtAll": "true"}}, "at --》 isAtAll"),
        (
            {"msgtype": "link", "link": {"title": "T", "text": "x", "messageUrl": URL, "picURL": PIC}},
            "link --》 picURL",
        ),
        (
            {
                "msgtype": "actionCard",
                "actionCard": {"title": "T", "text": "x", "singleTitle": "S", "singleUrl": URL},
            },
            "actionCard --》 singleURL",
        ),
        (
            {
                "msgtype": "actionCard",
                "actionCard": {"title": "T", "text": "x", "btns": [{"title": "b", "actionUrl": URL}]},
            },
            "actionCard --》 btns[0] --》 actionURL",
        ),
        (
            {
                "msgtype": "actionCard",
                "actionCard": {"title": "T", "text": "x", "btns": [{"title": "b" * 21, "actionURL": URL}]},
            },
            "btns[0] --》 title",
        ),
        (
            {
                "msgtype": "feedCard",
                "feedCard": {"links": [{"title": "F", "messageUrl": URL, "picURL": PIC}]},
            },
            "feedCard --》 links[0] --》 messageURL",
        ),
        ({"msgtype": "feedCard", "feedCard": {"links": []}}, "feedCard --》 links"),
        ({"msgtype": "action_card", "action_card": {}}, "msgtype"),
        ({"msgtype": "text", "text": {"content": "x"}, "msgUUID": "typo"}, "msgUUID"),
    ],
)
def test_custom_robot_refuses_a_wrong_body(
    dingtalk_emulator: DingTalkEmulator, body: Any, where: str
) -> None:
    answer = send_custom_robot(dingtalk_emulator, body)
    assert answer["errcode"] == 400402 and answer["errmsg"].startswith("错误描述:参数 ")
    assert where in answer["errmsg"]
    assert dingtalk_emulator.inbox() == []


def test_custom_robot_body_that_is_not_an_object_is_40035(dingtalk_emulator: DingTalkEmulator) -> None:
    answer = send_custom_robot(dingtalk_emulator, ["text"])
    assert (answer["errcode"], answer["errmsg"]) == (40035, "缺少参数 json")


@pytest.mark.parametrize(
    ("key", "param", "field"),
    [
        ("sampleText", {"text": "typo"}, "msgParam.content"),
        ("sampleMarkdown", {"title": "T", "text": "x", "content": "extra"}, "msgParam.content"),
        ("sampleLink", {"text": "x", "title": "T", "messageUrl": URL}, "msgParam.picUrl"),
        ("sampleImageMsg", {"photoUrl": PIC}, "msgParam.photoURL"),
        (
            "sampleActionCard",
            {"title": "T", "text": "x", "singleTitle": "S", "singleUrl": URL},
            "msgParam.singleURL",
        ),
        (
            "sampleActionCard3",
            {
                "title": "T",
                "text": "x",
                "actionTitle1": "a",
                "actionURL1": URL,
                "actionTitle2": "b",
                "actionURL2": URL,
            },
            "msgParam.actionTitle3",
        ),
        (
            "sampleActionCard6",
            {
                "title": "T",
                "text": "x",
                "buttonTitle1": "a",
                "buttonUrl1": URL,
                "buttonTitle2": "b",
                "buttonURL2": URL,
            },
            "msgParam.buttonUrl2",
        ),
        (
            "sampleActionCard",
            {"title": "T", "text": "x", "singleTitle": "S" * 21, "singleURL": URL},
            "msgParam.singleTitle",
        ),
        ("sampleFile", {"mediaId": "@f", "fileName": "a.txt"}, "msgParam.fileType"),
    ],
)
def test_app_robot_refuses_a_wrong_msg_param(
    dingtalk_emulator: DingTalkEmulator, key: str, param: dict[str, Any], field: str
) -> None:
    answer = send_app_robot(dingtalk_emulator, key, param)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalidParameter.msgParam.invalid"
    assert field in answer.json()["message"]
    assert dingtalk_emulator.inbox() == []


def test_app_robot_msg_param_must_be_a_json_string(dingtalk_emulator: DingTalkEmulator) -> None:
    body = {"robotCode": dingtalk_emulator.app.app_key, "openConversationId": "cid-1", "msgKey": "sampleText"}
    headers = {"x-acs-dingtalk-access-token": v1_token(dingtalk_emulator)}
    answer = requests.post(
        f"{dingtalk_emulator.url}/v1.0/robot/groupMessages/send",
        json=body | {"msgParam": {"content": "an object, not a string"}},
        headers=headers,
        timeout=5,
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "invalidParameter.msgParam.invalid")


# ---------------------------------------------------------------- what the renderers used to let through


@pytest.mark.parametrize(
    ("render", "message", "field"),
    [
        (to_work_notification, Link(title="T", text="x", message_url=URL), "msg.link.picUrl"),
        (to_app_robot, Link(title="T", text="x", message_url=URL), "msgParam.picUrl"),
        (to_work_notification, Voice(media_id="@v", duration=60), "msg.voice.duration"),
    ],
)
def test_renderers_refuse_what_dingtalk_refuses(render: Any, message: Message, field: str) -> None:
    """A link needs its picture in these two dialects, and a voice is under 60 s: the strict emulator
    refused what the renderers produced, so they now say so before anything is sent."""
    from airflow_provider_dingtalk.exceptions import DingTalkValidationError

    with pytest.raises(DingTalkValidationError) as err:
        render(message)
    assert err.value.field == field
