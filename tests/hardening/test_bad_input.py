"""Bad input, table-driven: every public operator, hook method and notifier refuses malformed input
with a :class:`DingTalkValidationError` naming the field (and the limit, where one was broken), and
not one request reaches DingTalk — not even ``gettoken``.

Limits are DingTalk's (its pages cited in ``messages/``), each tested at limit + 1. Over-long
recipient lists are not errors: they are split into calls (the last tests check that).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk.event_types import CALL_BACK_TAGS
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
from airflow_provider_dingtalk.messages import (
    OA,
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    FormRow,
    Link,
    Markdown,
    Mentions,
    Message,
    Text,
    Voice,
)
from airflow_provider_dingtalk.notifications import (
    DingTalkAppRobotNotifier,
    DingTalkCustomRobotNotifier,
    DingTalkNotifier,
)
from airflow_provider_dingtalk.operators.app_robot import DingTalkAppRobotOperator
from airflow_provider_dingtalk.operators.callback import (
    DingTalkRegisterCallbackOperator,
    DingTalkUpdateCallbackOperator,
)
from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator
from airflow_provider_dingtalk.operators.work_notification import (
    DingTalkMessageOperator,
    DingTalkRecallMessageOperator,
    DingTalkUpdateStatusBarOperator,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST, Logs, fake_context

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
URL = "https://example.com/"


@pytest.fixture
def emulator(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", dingtalk_emulator.connection_json())
    robot = dingtalk_emulator.add_robot()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", dingtalk_emulator.webhook_connection_json(robot)
    )
    monkeypatch.setenv("AIRFLOW_CONN_EMPTY_ROBOT", json.dumps({"conn_type": "dingtalkcustomrobot"}))
    dingtalk_emulator.state.requests.clear()
    return dingtalk_emulator


def work() -> DingTalkWorkNotificationHook:
    return DingTalkWorkNotificationHook(retry_policy=FAST)


def app_robot() -> DingTalkAppRobotHook:
    return DingTalkAppRobotHook(retry_policy=FAST)


def callbacks() -> DingTalkCallbackHook:
    return DingTalkCallbackHook(retry_policy=FAST)


def webhook() -> DingTalkCustomRobotHook:
    return DingTalkCustomRobotHook(retry_policy=FAST)


# -- sizes at limit + 1 ------------------------------------------------------------------------------


def _pad_to(total: int, render: Callable[[str], str]) -> str:
    """The text that makes ``render(text)`` exactly ``total`` UTF-8 bytes (ASCII, so 1 byte a char)."""
    base = len(render("").encode())
    return "x" * (total - base)


WN_TEXT = _pad_to(2049, lambda t: dumps({"msgtype": "text", "text": {"content": t}}))
WN_MARKDOWN = _pad_to(2049, lambda t: dumps({"msgtype": "markdown", "markdown": {"title": "T", "text": t}}))
ROBOT_TEXT = _pad_to(20001, lambda t: dumps({"msgtype": "text", "text": {"content": t}, "msgUuid": "0" * 32}))
APP_TEXT = _pad_to(15001, lambda t: dumps({"content": t}))
LONG_URL = URL + "a" * (501 - len(URL))
assert len(LONG_URL) == 501


def card(**changes: Any) -> ActionCard:
    fields: dict[str, Any] = {"title": "Deploy", "text": "done", "single_title": "Open", "single_url": URL}
    fields.update(changes)
    return ActionCard(**fields)


def buttons(n: int, **button: Any) -> ActionCard:
    one = {"title": "Go", "url": URL, **button}
    return ActionCard(title="Pick", text="one", buttons=[Button(**one) for _ in range(n)])


def send_wn(message: Message | dict[str, Any], **kwargs: Any) -> Any:
    return work().send_work_notification(message, **{"userid_list": ["user1"], **kwargs})


def send_group(message: Message) -> Any:
    return app_robot().send_robot_group_message(message, open_conversation_id="cidOps")


def register(**changes: Any) -> Callable[[], Any]:
    kwargs: dict[str, Any] = {
        "call_back_tags": ["bpms_instance_change"],
        "url": URL,
        "token": "tok",
        "aes_key": AES_KEY,
        **changes,
    }
    return lambda: callbacks().register_callback(**kwargs)


@dataclass(frozen=True)
class Case:
    """A call that must be refused before anything is sent, and how the refusal names the problem."""

    name: str
    call: Callable[[], Any]
    field: str
    limit: int | None = None


def _image(tmp: Path, size: int) -> Path:
    path = tmp / "big.png"
    path.write_bytes(b"x" * size)
    return path


TAGS_21 = sorted(CALL_BACK_TAGS)[:21]
HOOK_CASES = [
    # work notifications: the message
    Case("text content not a string", lambda: send_wn(Text(content=123)), "msg.text.content"),  # type: ignore[arg-type]
    Case("text content empty", lambda: send_wn(Text(content="  ")), "msg.text.content"),
    Case("text msg 2,049 bytes", lambda: send_wn(Text(content=WN_TEXT)), "msg", 2048),
    Case("markdown msg 2,049 bytes", lambda: send_wn(Markdown(title="T", text=WN_MARKDOWN)), "msg", 2048),
    Case("markdown title empty", lambda: send_wn(Markdown(title="", text="x")), "msg.markdown.title"),
    Case("action card title 65", lambda: send_wn(card(title="t" * 65)), "msg.action_card.title", 64),
    Case("single_title 21", lambda: send_wn(card(single_title="s" * 21)), "msg.action_card.single_title", 20),
    Case("single_url 501", lambda: send_wn(card(single_url=LONG_URL)), "msg.action_card.single_url", 500),
    Case("single_url ftp", lambda: send_wn(card(single_url="ftp://x.com")), "msg.action_card.single_url"),
    Case(
        "button title 21",
        lambda: send_wn(buttons(2, title="b" * 21)),
        "msg.action_card.btn_json_list[0].title",
        20,
    ),
    Case(
        "button url 501",
        lambda: send_wn(buttons(2, url=LONG_URL)),
        "msg.action_card.btn_json_list[0].action_url",
        500,
    ),
    Case(
        "card with no button",
        lambda: send_wn(ActionCard(title="t", text="x")),
        "msg.action_card.btn_json_list",
    ),
    Case(
        "btn_orientation 2",
        lambda: send_wn(
            ActionCard(title="t", text="x", buttons=[Button(title="a", url=URL)], btn_orientation="2")
        ),
        "msg.action_card.btn_orientation",
    ),
    Case("oa head_text 11", lambda: send_wn(OA(message_url=URL, head_text="h" * 11)), "msg.oa.head.text", 10),
    Case(
        "oa form 7 rows",
        lambda: send_wn(OA(message_url=URL, head_text="h", form=[FormRow(key="k", value="v")] * 7)),
        "msg.oa.body.form",
        6,
    ),
    Case(
        "oa head_bgcolor not ARGB",
        lambda: send_wn(OA(message_url=URL, head_text="h", head_bgcolor="red")),
        "msg.oa.head.bgcolor",
    ),
    Case(
        "oa message_url javascript:",
        lambda: send_wn(OA(message_url="javascript:x", head_text="h")),
        "msg.oa.message_url",
    ),
    Case("voice duration 60", lambda: send_wn(Voice(media_id="@m", duration=60)), "msg.voice.duration", 59),
    Case("voice duration 0", lambda: send_wn(Voice(media_id="@m", duration=0)), "msg.voice.duration", 59),
    Case("voice duration '10'", lambda: send_wn(Voice(media_id="@m", duration="10")), "msg.voice.duration"),  # type: ignore[arg-type]
    Case("voice without media", lambda: send_wn(Voice(duration=10)), "msg.voice.media_id"),
    Case(
        "link url ftp",
        lambda: send_wn(Link(title="t", text="x", message_url="ftp://x")),
        "msg.link.messageUrl",
    ),
    Case(
        "link url with space",
        lambda: send_wn(Link(title="t", text="x", message_url="https://a b")),
        "msg.link.messageUrl",
    ),
    Case("unknown msgtype (raw)", lambda: send_wn({"msgtype": "video", "video": {}}), "msg.msgtype"),
    Case(
        "actionCard spelling (raw)",
        lambda: send_wn({"msgtype": "actionCard", "actionCard": {}}),
        "msg.msgtype",
    ),
    Case("raw msg without body", lambda: send_wn({"msgtype": "text"}), "msg.text"),
    Case(
        "raw msg 2,049 bytes", lambda: send_wn({"msgtype": "text", "text": {"content": WN_TEXT}}), "msg", 2048
    ),
    Case(
        "feed card as work notification",
        lambda: send_wn(FeedCard(links=[FeedLink(title="t", message_url=URL, pic_url=URL)])),
        "msg.msgtype",
    ),
    Case("msg not a message", lambda: send_wn("hello"), "msg"),  # type: ignore[arg-type]
    # work notifications: recipients and ids
    Case("no recipients", lambda: send_wn(Text(content="x"), userid_list=[]), "userid_list"),
    Case("user id with comma", lambda: send_wn(Text(content="x"), userid_list=["a,b"]), "userid_list"),
    Case("user id not a string", lambda: send_wn(Text(content="x"), userid_list=[7]), "userid_list"),
    # recipients as a template renders what was not a list of ids (native rendering off)
    Case("userid_list 'None'", lambda: send_wn(Text(content="x"), userid_list="None"), "userid_list"),
    Case("userid_list '[]'", lambda: send_wn(Text(content="x"), userid_list="[]"), "userid_list"),
    Case(
        "userid_list a Python list's repr",
        lambda: send_wn(Text(content="x"), userid_list="['u1', 'u2']"),
        "userid_list",
    ),
    Case("userid_list a dict", lambda: send_wn(Text(content="x"), userid_list={"u1": 1}), "userid_list"),  # type: ignore[arg-type]
    Case("userid_list an int", lambda: send_wn(Text(content="x"), userid_list=42), "userid_list"),  # type: ignore[arg-type]
    Case(
        "user id with a lone surrogate",
        lambda: send_wn(Text(content="x"), userid_list=["u\ud800"]),
        "userid_list",
    ),
    Case(
        "user id 'None' in a list",
        lambda: send_wn(Text(content="x"), userid_list="user1,None"),
        "userid_list",
    ),
    Case(
        "dept_id_list 'None'",
        lambda: send_wn(Text(content="x"), userid_list=None, dept_id_list="None"),
        "dept_id_list",
    ),
    Case(
        "dept_id_list a dict",
        lambda: send_wn(Text(content="x"), userid_list=None, dept_id_list={1: "sales"}),  # type: ignore[arg-type]
        "dept_id_list",
    ),
    Case(
        "dept id not a number",
        lambda: send_wn(Text(content="x"), userid_list=None, dept_id_list=["sales"]),
        "dept_id_list",
    ),
    Case("to_all_user with a list", lambda: send_wn(Text(content="x"), to_all_user=True), "to_all_user"),
    Case(
        "to_all_user 'flase'",
        lambda: send_wn(Text(content="x"), userid_list=None, to_all_user="flase"),
        "to_all_user",
    ),
    Case("to_all_user 'None'", lambda: send_wn(Text(content="x"), to_all_user="None"), "to_all_user"),
    Case("agent_id not a number", lambda: send_wn(Text(content="x"), agent_id="abc"), "agent_id"),
    Case("agent_id True", lambda: send_wn(Text(content="x"), agent_id=True), "agent_id"),
    Case("progress task_id not a number", lambda: work().get_send_progress("abc"), "task_id"),  # type: ignore[arg-type]
    Case("result task_id not a number", lambda: work().get_send_result("1;2"), "task_id"),  # type: ignore[arg-type]
    Case("recall task_id True", lambda: work().recall(True), "task_id"),
    Case("status bar value empty", lambda: work().update_status_bar(1, ""), "status_value"),
    Case("status bar bg no 0x", lambda: work().update_status_bar(1, "Done", "FF00AA00"), "status_bg"),
    Case("upload media_type video", lambda: work().upload_media("/etc/hostname", "video"), "media_type"),
    Case("upload missing file", lambda: work().upload_media("/nonexistent.png", "image"), "path"),
    # app robot
    Case("app robot msgParam 15,001 bytes", lambda: send_group(Text(content=APP_TEXT)), "msgParam", 15000),
    Case("app robot card title 65", lambda: send_group(card(title="t" * 65)), "msgParam.title", 64),
    Case(
        "app robot singleTitle 21",
        lambda: send_group(card(single_title="s" * 21)),
        "msgParam.singleTitle",
        20,
    ),
    Case("app robot 6 buttons", lambda: send_group(buttons(6)), "buttons", 5),
    Case("app robot voice", lambda: send_group(Voice(media_id="@m", duration=3)), "msgKey"),
    Case(
        "app robot picUrl ftp",
        lambda: send_group(Link(title="t", text="x", message_url=URL, pic_url="ftp://p")),
        "msgParam.picUrl",
    ),
    Case(
        "open_conversation_id empty",
        lambda: app_robot().send_robot_group_message(Text(content="x"), open_conversation_id=" "),
        "open_conversation_id",
    ),
    Case(
        "user_ids a string",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids="user1"),
        "user_ids",
    ),
    Case(
        "user_ids empty",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids=[]),
        "user_ids",
    ),
    Case(
        "user_ids a dict",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids={"user1": 1}),  # type: ignore[arg-type]
        "user_ids",
    ),
    Case(
        "user_ids an int",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids=7),  # type: ignore[arg-type]
        "user_ids",
    ),
    Case(
        "user_ids lone surrogate",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids=["\udfff"]),
        "user_ids[0]",
    ),
    Case(
        "user_ids blank item",
        lambda: app_robot().send_robot_direct_message(Text(content="x"), user_ids=["user1", ""]),
        "user_ids[1]",
    ),
    # custom robot
    Case("robot body 20,001 bytes", lambda: webhook().send(Text(content=ROBOT_TEXT)), "body", 20000),
    Case("robot card title 65", lambda: webhook().send(card(title="t" * 65)), "actionCard.title", 64),
    Case(
        "robot singleURL 501", lambda: webhook().send(card(single_url=LONG_URL)), "actionCard.singleURL", 500
    ),
    Case(
        "robot button title 21",
        lambda: webhook().send(buttons(2, title="b" * 21)),
        "actionCard.btns[0].title",
        20,
    ),
    Case("robot OA", lambda: webhook().send(OA(message_url=URL, head_text="h")), "msgtype"),
    Case(
        "robot msgUuid 10,000 chars",
        lambda: webhook().send(Text(content="x"), msg_uuid="u" * 10000),
        "msgUuid",
        64,
    ),
    Case("robot msgUuid with a space", lambda: webhook().send(Text(content="x"), msg_uuid="a b"), "msgUuid"),
    Case(
        "robot mention lone surrogate",
        lambda: webhook().send(Text(content="x"), mentions=Mentions(user_ids=["\ud800"])),
        "at.atUserIds[0]",
    ),
    Case(
        "robot at_all 'maybe'",
        lambda: webhook().send(Text(content="x"), mentions=Mentions(at_all="maybe")),  # type: ignore[arg-type]
        "at.isAtAll",
    ),
    Case("robot hide_avatar 'x'", lambda: webhook().send(card(hide_avatar="x")), "actionCard.hideAvatar"),
    Case("robot feed card empty", lambda: webhook().send(FeedCard(links=[])), "feedCard.links"),
    Case(
        "robot feed picURL ftp",
        lambda: webhook().send(FeedCard(links=[FeedLink(title="t", message_url=URL, pic_url="ftp://p")])),
        "feedCard.links[0].picURL",
    ),
    Case(
        "robot mention on a link",
        lambda: webhook().send(Link(title="t", text="x", message_url=URL), mentions=Mentions(user_ids=["u"])),
        "at",
    ),
    Case(
        "robot mention mobiles a string",
        lambda: webhook().send(Text(content="x"), mentions=Mentions(mobiles="138")),
        "Mentions.mobiles",
    ),
    Case(
        "robot connection without token",
        lambda: DingTalkCustomRobotHook("empty_robot").send(Text(content="x")),
        "connection 'empty_robot'",
    ),
    # callbacks (register and update check alike)
    Case("aes_key 42 chars", register(aes_key=AES_KEY[:42]), "aes_key", 43),
    Case("aes_key 44 chars", register(aes_key=AES_KEY + "H"), "aes_key", 43),
    Case("aes_key not alphanumeric", register(aes_key=AES_KEY[:42] + "+"), "aes_key"),
    Case("aes_key not a string", register(aes_key=None), "aes_key"),
    Case(
        "unknown callback tag",
        register(call_back_tags=["bpms_instance_change", "no_such_event"]),
        "call_back_tags",
    ),
    Case("21 callback tags", register(call_back_tags=TAGS_21), "call_back_tags", 20),
    Case("callback tags a string", register(call_back_tags="user_add_org"), "call_back_tags"),
    Case("callback tags empty", register(call_back_tags=[]), "call_back_tags"),
    Case("callback url ftp", register(url="ftp://example.com/"), "url"),
    Case("callback url not a URL", register(url="example.com/events"), "url"),
    Case("callback token empty", register(token=""), "token"),
    Case(
        "update with aes_key 44",
        lambda: callbacks().update_callback(
            call_back_tags=["user_add_org"], url=URL, token="t", aes_key=AES_KEY + "x"
        ),
        "aes_key",
        43,
    ),
]


def _refused(emulator: DingTalkEmulator, call: Callable[[], Any], field: str, limit: int | None) -> None:
    with pytest.raises(DingTalkValidationError) as info:
        call()
    assert info.value.field == field, str(info.value)
    assert field in str(info.value)
    if limit is not None:
        assert info.value.limit == limit and str(limit) in str(info.value)
    assert emulator.requests() == []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in HOOK_CASES])
def test_hook_refuses_bad_input_before_sending(emulator: DingTalkEmulator, case: Case) -> None:
    _refused(emulator, case.call, case.field, case.limit)


def test_upload_refuses_an_image_over_1_mb_and_an_empty_file(
    emulator: DingTalkEmulator, tmp_path: Path
) -> None:
    big = _image(tmp_path, 1024 * 1024 + 1)
    _refused(emulator, lambda: work().upload_media(big, "image"), "path", 1024 * 1024)
    empty_file = tmp_path / "empty.amr"
    empty_file.write_bytes(b"")
    _refused(emulator, lambda: work().upload_media(empty_file, "voice"), "path", None)


# -- operators: constructor checks (at DAG parse) and templated fields that render to bad values -----

CTX: dict[str, Any] = {"params": {}}


def rendered(op: Any) -> Callable[[], Any]:
    """Render the operator's templated fields, then execute it, as a task run does."""

    def run() -> Any:
        op.render_template_fields(CTX)
        return op.execute(CTX)

    return run


OPERATOR_CASES = [
    # parse-time checks
    Case(
        "message op without a message",
        lambda: DingTalkMessageOperator(task_id="t", userid_list="user1"),
        "message",
    ),
    Case(
        "message op markdown without title",
        lambda: DingTalkMessageOperator(task_id="t", markdown="x", userid_list="u"),
        "title",
    ),
    Case(
        "robot op with both targets",
        lambda: DingTalkAppRobotOperator(task_id="t", text="x", open_conversation_id="cid", user_ids=["u"]),
        "open_conversation_id",
    ),
    Case(
        "webhook op with two messages",
        lambda: DingTalkCustomRobotOperator(task_id="t", text="x", markdown="y", title="z"),
        "message",
    ),
    # templated values, rendered at run time
    Case(
        "message op text renders empty",
        rendered(DingTalkMessageOperator(task_id="t", text="{{ '' }}", userid_list="user1")),
        "msg.text.content",
    ),
    Case(
        "message op text renders to 2,049 bytes",
        rendered(
            DingTalkMessageOperator(task_id="t", text=f"{{{{ 'x' * {len(WN_TEXT)} }}}}", userid_list="user1")
        ),
        "msg",
        2048,
    ),
    Case(
        "message op card title renders to 65",
        rendered(
            DingTalkMessageOperator(task_id="t", message=card(title="{{ 't' * 65 }}"), userid_list="user1")
        ),
        "msg.action_card.title",
        64,
    ),
    Case(
        "message op recipients render empty",
        rendered(DingTalkMessageOperator(task_id="t", text="x", userid_list="{{ '' }}")),
        "userid_list",
    ),
    Case(
        "message op to_all_user renders to 'None'",
        rendered(DingTalkMessageOperator(task_id="t", text="x", dept_id_list="1", to_all_user="{{ None }}")),
        "to_all_user",
    ),
    Case(
        "message op wait_for_delivery 'yes please'",
        lambda: DingTalkMessageOperator(
            task_id="t", text="x", userid_list="u", wait_for_delivery="yes please"
        ),  # type: ignore[arg-type]
        "wait_for_delivery",
    ),
    Case(
        "webhook op at_all renders to ''",
        rendered(DingTalkCustomRobotOperator(task_id="t", text="x", at_all="{{ '' }}")),  # type: ignore[arg-type]
        "at_all",
    ),
    Case(
        "register op update_if_exists 'sure'",
        lambda: DingTalkRegisterCallbackOperator(
            task_id="t",
            call_back_tags=["user_add_org"],
            url=URL,
            token="t",
            aes_key=AES_KEY,
            update_if_exists="sure",  # type: ignore[arg-type]
        ),
        "update_if_exists",
    ),
    Case(
        "message op agent_id renders to text",
        rendered(
            DingTalkMessageOperator(task_id="t", text="x", userid_list="user1", agent_id="{{ 'prod' }}")
        ),
        "agent_id",
    ),
    Case(
        "message op message renders to non-JSON",
        rendered(DingTalkMessageOperator(task_id="t", message="{{ 'not json' }}", userid_list="user1")),  # type: ignore[arg-type]
        "message",
    ),
    Case(
        "recall op task_ids render to text",
        rendered(DingTalkRecallMessageOperator(task_id="t", task_ids="{{ 'none' }}")),
        "task_ids",
    ),
    Case(
        "status bar op colour renders bad",
        rendered(
            DingTalkUpdateStatusBarOperator(
                task_id="t", task_ids=1, status_value="Done", status_bg="{{ 'red' }}"
            )
        ),
        "status_bg",
    ),
    Case(
        "robot op text renders to 15,001 bytes",
        rendered(
            DingTalkAppRobotOperator(
                task_id="t", text=f"{{{{ 'x' * {len(APP_TEXT)} }}}}", open_conversation_id="cid1"
            )
        ),
        "msgParam",
        15000,
    ),
    Case(
        "message op recipients render to 'None'",
        rendered(DingTalkMessageOperator(task_id="t", text="x", userid_list="{{ None }}")),
        "userid_list",
    ),
    Case(
        "message op recipients render to a Python list's repr",
        rendered(DingTalkMessageOperator(task_id="t", text="x", userid_list="{{ ['u1', 'u2'] }}")),
        "userid_list",
    ),
    Case(
        "robot op user_ids render to a Python list's repr",
        rendered(DingTalkAppRobotOperator(task_id="t", text="x", user_ids="{{ ['u1', 'u2'] }}")),
        "user_ids",
    ),
    Case(
        "robot op user_ids render to 'None'",
        rendered(DingTalkAppRobotOperator(task_id="t", text="x", user_ids="{{ None }}")),
        "user_ids",
    ),
    Case(
        "webhook op at_user_ids render to a Python list's repr",
        rendered(DingTalkCustomRobotOperator(task_id="t", text="x", at_user_ids="{{ ['u1'] }}")),
        "at_user_ids",
    ),
    Case(
        "webhook op at_mobiles render to 'None'",
        rendered(DingTalkCustomRobotOperator(task_id="t", text="x", at_mobiles="{{ None }}")),
        "at_mobiles",
    ),
    Case(
        "robot op user_ids render empty",
        rendered(DingTalkAppRobotOperator(task_id="t", text="x", user_ids="{{ '' }}")),
        "user_ids",
    ),
    Case(
        "webhook op markdown renders to 20,001 bytes",
        rendered(DingTalkCustomRobotOperator(task_id="t", text=f"{{{{ 'x' * {len(ROBOT_TEXT)} }}}}")),
        "body",
        20000,
    ),
    Case(
        "webhook op link url renders non-http",
        rendered(
            DingTalkCustomRobotOperator(
                task_id="t", message=Link(title="t", text="x", message_url="{{ 'file:///etc/passwd' }}")
            )
        ),
        "link.messageUrl",
    ),
    Case(
        "register op aes_key renders to 42",
        rendered(
            DingTalkRegisterCallbackOperator(
                task_id="t",
                call_back_tags=["user_add_org"],
                url=URL,
                token="t",
                aes_key=f"{{{{ '{AES_KEY[:42]}' }}}}",
            )
        ),
        "aes_key",
        43,
    ),
    Case(
        "register op unknown tag",
        rendered(
            DingTalkRegisterCallbackOperator(
                task_id="t", call_back_tags=["{{ 'nope' }}"], url=URL, token="t", aes_key=AES_KEY
            )
        ),
        "call_back_tags",
    ),
    Case(
        "update op url renders non-http",
        rendered(
            DingTalkUpdateCallbackOperator(
                task_id="t",
                call_back_tags=["user_add_org"],
                url="{{ 'ftp://x' }}",
                token="t",
                aes_key=AES_KEY,
            )
        ),
        "url",
    ),
    # notifier constructors (DAG parse time)
    Case("notifier without recipients", lambda: DingTalkNotifier(), "userid_list"),
    Case("robot notifier without a target", lambda: DingTalkAppRobotNotifier(), "open_conversation_id"),
    Case("notifier timeout 0", lambda: DingTalkCustomRobotNotifier(timeout=0), "timeout"),
    Case("robot notifier at_all 'False!'", lambda: DingTalkCustomRobotNotifier(at_all="False!"), "at_all"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in OPERATOR_CASES])
def test_operator_refuses_bad_input_before_sending(emulator: DingTalkEmulator, case: Case) -> None:
    _refused(emulator, case.call, case.field, case.limit)


# -- notifiers never raise: nothing is sent and the log names the field ------------------------------

NOTIFIER_CASES = [
    Case(
        "work notification: user id with a comma",
        lambda: DingTalkNotifier(userid_list=["a,b"], retry_policy=FAST),
        "userid_list",
    ),
    Case(
        "work notification: agent_id renders to text",
        lambda: DingTalkNotifier(userid_list="user1", agent_id="{{ 'prod' }}", retry_policy=FAST),
        "agent_id",
    ),
    Case(
        "app robot: user_ids render empty",
        lambda: DingTalkAppRobotNotifier(user_ids="{{ '' }}", retry_policy=FAST),
        "user_ids",
    ),
    Case(
        "app robot: user_ids a Python list's repr",
        lambda: DingTalkAppRobotNotifier(user_ids="{{ ['u1', 'u2'] }}", retry_policy=FAST),
        "user_ids",
    ),
    Case(
        "work notification: userid_list renders to 'None'",
        lambda: DingTalkNotifier(userid_list="{{ None }}", retry_policy=FAST),
        "userid_list",
    ),
    Case(
        "app robot: blank group",
        lambda: DingTalkAppRobotNotifier(open_conversation_id="{{ ' ' }}", retry_policy=FAST),
        "open_conversation_id",
    ),
    Case(
        "custom robot: connection without token",
        lambda: DingTalkCustomRobotNotifier(
            dingtalk_custom_robot_conn_id="empty_robot", retry_policy=FAST, fold_storms=False
        ),
        "connection 'empty_robot'",
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in NOTIFIER_CASES])
def test_notifier_logs_bad_input_and_sends_nothing(
    emulator: DingTalkEmulator, logs: Logs, case: Case
) -> None:
    notifier = case.call()
    notifier(fake_context(exception=ValueError("boom")))  # must not raise
    text = logs.text
    assert "not delivered" in text and case.field in text
    assert [r.path for r in emulator.requests() if r.path != "/gettoken"] == []
    assert emulator.inbox() == []


def test_limits_are_inclusive_exactly_at_the_limit(emulator: DingTalkEmulator) -> None:
    """The refusals above are at limit + 1: exactly at the limit the same messages go through."""
    send_wn(Text(content=WN_TEXT[:-1]))
    send_wn(card(title="t" * 64, single_title="s" * 20, single_url=LONG_URL[:-1]))
    send_group(Text(content=APP_TEXT[:-1]))
    webhook().send(Text(content=ROBOT_TEXT[:-1]))
    assert len(emulator.inbox()) == 4
