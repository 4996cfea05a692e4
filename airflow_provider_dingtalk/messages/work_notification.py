"""Work notifications (asyncsend_v2): the snake_case ``msg`` dialect.

As DingTalk's "Asynchronous sending of enterprise session messages" and "Message types and data
format" pages (help.dingtalk.io) describe the call, its limits and the message bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import _checks as check
from airflow_provider_dingtalk.messages import _raw
from airflow_provider_dingtalk.messages._raw import RawObject
from airflow_provider_dingtalk.messages.model import (
    OA,
    ActionCard,
    Button,
    File,
    FormRow,
    Image,
    Link,
    Markdown,
    Message,
    Rich,
    Text,
    Voice,
)

WORK_NOTIFICATION_MSG_MAX_BYTES = 2048
"""asyncsend_v2 documents ``msg`` as at most 2048 bytes."""

_MSGTYPES = ("text", "image", "voice", "file", "link", "oa", "markdown", "action_card")
_HEAD_TEXT_MAX_CHARS = 10
_FORM_MAX_ROWS = 6
_VOICE_SECONDS = (1, 59)  # "正整数，小于60" in DingTalk's message-type docs


def to_work_notification(message: Message) -> dict[str, Any]:
    """Render ``message`` as the ``msg`` of a work notification, checked against DingTalk's limits.

    :param message: any message type except :class:`FeedCard` (a custom-robot-only type).
    :raises DingTalkValidationError: naming the field, size and limit, before anything is sent.
    """
    msg: dict[str, Any]
    match message:
        case Text():
            msg = {"msgtype": "text", "text": {"content": check.text(message.content, "msg.text.content")}}
        case Markdown():
            msg = {
                "msgtype": "markdown",
                "markdown": {
                    "title": check.text(message.title, "msg.markdown.title"),
                    "text": check.text(message.text, "msg.markdown.text"),
                },
            }
        case Link():
            msg = {"msgtype": "link", "link": _link(message)}
        case Image():
            msg = {
                "msgtype": "image",
                "image": {"media_id": check.uploaded_media_id(message, "msg.image.media_id")},
            }
        case Voice():
            msg = {"msgtype": "voice", "voice": _voice(message)}
        case File():
            msg = {
                "msgtype": "file",
                "file": {"media_id": check.uploaded_media_id(message, "msg.file.media_id")},
            }
        case ActionCard():
            msg = {"msgtype": "action_card", "action_card": _action_card(message)}
        case OA():
            msg = {"msgtype": "oa", "oa": _oa(message)}
        case _:
            hint = (
                "check a raw dict with parse_work_notification instead"
                if isinstance(message, Mapping)
                else "use Text, Markdown, Link or ActionCard instead"
            )
            raise check.unsupported(message, "msg.msgtype", "A work notification", hint)
    check.within_bytes(dumps(msg), "msg", WORK_NOTIFICATION_MSG_MAX_BYTES)
    return msg


def parse_work_notification(raw: Mapping[str, Any]) -> Message:
    """Read a ``msg`` given as a raw dict (``{"msgtype": "text", "text": {"content": "hi"}}``) into the
    message model, and check it as :func:`to_work_notification` checks a typed message.

    Every key must be one DingTalk documents for that object (a misspelt key is refused, naming it and
    the closest right one, where DingTalk would send the message without it).

    :param raw: the ``msg`` object as DingTalk's "Message types and data format" page describes it.
    :returns: the message; :func:`to_work_notification` renders it as what will be sent.
    :raises DingTalkValidationError: naming the field, before anything is sent.
    """
    msgtype = _raw.kind(raw, "msg", "msgtype", _MSGTYPES, "A work notification", _SPELLINGS)
    top = RawObject(raw, "msg", ("msgtype", msgtype), "a work notification's msg")
    body = top.child(msgtype, _BODY_KEYS[msgtype], f"a work notification's {msgtype}")
    message: Message
    match msgtype:
        case "text":
            message = Text(content=body.required("content"))
        case "markdown":
            message = Markdown(title=body.required("title"), text=body.required("text"))
        case "link":
            message = Link(
                title=body.required("title"),
                text=body.required("text"),
                message_url=body.required("messageUrl"),
                pic_url=body.required("picUrl"),
            )
        case "image":
            message = Image(media_id=body.required("media_id"))
        case "voice":
            message = Voice(
                media_id=body.required("media_id"), duration=body.whole_number("duration", required=True)
            )
        case "file":
            message = File(media_id=body.required("media_id"))
        case "action_card":
            message = ActionCard(
                title=body.required("title"),
                text=body.required("markdown"),
                single_title=body.get("single_title"),
                single_url=body.get("single_url"),
                buttons=[
                    Button(title=b.required("title"), url=b.required("action_url"))
                    for b in body.children("btn_json_list", ("title", "action_url"), "a button")
                ],
                btn_orientation=body.get("btn_orientation") or "0",
            )
        case _:  # "oa", the last of _MSGTYPES
            message = _parse_oa(body)
    to_work_notification(message)
    return message


_SPELLINGS = {
    "actionCard": "a work notification spells it 'action_card'",
    "feedCard": "only the custom robot sends feed cards",
}
_BODY_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("content",),
    "markdown": ("title", "text"),
    "link": ("messageUrl", "picUrl", "title", "text"),
    "image": ("media_id",),
    "voice": ("media_id", "duration"),
    "file": ("media_id",),
    "action_card": ("title", "markdown", "single_title", "single_url", "btn_orientation", "btn_json_list"),
    "oa": ("message_url", "pc_message_url", "head", "status_bar", "body"),
}


def _parse_oa(oa: RawObject) -> OA:
    head = oa.child("head", ("bgcolor", "text"), "an OA message's head")
    bar = oa.child("status_bar", ("status_value", "status_bg"), "an OA message's status_bar", required=False)
    body = oa.child(
        "body",
        ("title", "form", "rich", "content", "image", "file_count", "author"),
        "an OA message's body",
        required=False,
    )
    rich = body.child("rich", ("num", "unit"), "an OA body's rich", required=False)
    return OA(
        message_url=oa.required("message_url"),
        pc_message_url=oa.get("pc_message_url"),
        head_text=head.required("text"),
        head_bgcolor=head.get("bgcolor") or "FFBBBBBB",
        status_value=bar.get("status_value"),
        status_bg=bar.get("status_bg"),
        title=body.get("title"),
        form=[
            FormRow(key=row.required("key"), value=row.required("value"))
            for row in body.children("form", ("key", "value"), "a form row")
        ],
        rich=Rich(num=rich.required("num"), unit=rich.get("unit")) if rich.raw else None,
        content=body.get("content"),
        image=body.get("image"),
        file_count=body.whole_number("file_count"),
        author=body.get("author"),
    )


def _link(link: Link) -> dict[str, str]:
    # The one work-notification body with camelCase keys (TOP SDK class Link). picUrl is in every
    # sample of DingTalk's docs and its table lists it as required, unlike the custom robot's.
    body = {
        "messageUrl": check.url(link.message_url, "msg.link.messageUrl"),
        "title": check.text(link.title, "msg.link.title"),
        "text": check.text(link.text, "msg.link.text"),
    }
    if link.pic_url is None:
        raise DingTalkValidationError(
            "msg.link.picUrl", "is required in a work notification: give pic_url (a URL or a media id)"
        )
    pic = check.text(link.pic_url, "msg.link.picUrl")
    if not pic.startswith("@"):  # an uploaded media id, or else a URL
        check.url(pic, "msg.link.picUrl")
    return body | {"picUrl": pic}


def _voice(voice: Voice) -> dict[str, str]:
    media_id = check.uploaded_media_id(voice, "msg.voice.media_id")
    low, high = _VOICE_SECONDS
    if isinstance(voice.duration, bool) or not isinstance(voice.duration, int):
        raise DingTalkValidationError("msg.voice.duration", "must be a whole number of seconds")
    if not low <= voice.duration <= high:
        raise DingTalkValidationError(
            "msg.voice.duration", f"must be {low} to {high} seconds", size=voice.duration, limit=high
        )
    return {"media_id": media_id, "duration": str(voice.duration)}


def _action_card(card: ActionCard) -> dict[str, Any]:
    p = "msg.action_card"
    body: dict[str, Any] = {
        "title": check.text(card.title, f"{p}.title", max_chars=check.CARD_TITLE_MAX_CHARS),
        "markdown": check.text(card.text, f"{p}.markdown"),
    }
    mode = check.card_mode(
        card, single_title=f"{p}.single_title", single_url=f"{p}.single_url", buttons=f"{p}.btn_json_list"
    )
    if mode == "single":
        body["single_title"] = check.text(
            card.single_title, f"{p}.single_title", max_chars=check.BUTTON_TITLE_MAX_CHARS
        )
        body["single_url"] = check.url(
            card.single_url, f"{p}.single_url", max_chars=check.BUTTON_URL_MAX_CHARS
        )
        return body
    body["btn_orientation"] = check.choice(card.btn_orientation, f"{p}.btn_orientation", ("0", "1"))
    buttons = []
    for i, btn in enumerate(card.buttons):
        item = f"{p}.btn_json_list[{i}]"
        check.button(btn, title=f"{item}.title", url_field=f"{item}.action_url")
        buttons.append({"title": btn.title, "action_url": btn.url})
    body["btn_json_list"] = buttons
    return body


def _oa(oa: OA) -> dict[str, Any]:
    p = "msg.oa"
    rendered: dict[str, Any] = {"message_url": check.url(oa.message_url, f"{p}.message_url")}
    if oa.pc_message_url is not None:
        rendered["pc_message_url"] = check.url(oa.pc_message_url, f"{p}.pc_message_url")
    rendered["head"] = {
        "bgcolor": check.argb(oa.head_bgcolor, f"{p}.head.bgcolor"),
        "text": check.text(oa.head_text, f"{p}.head.text", max_chars=_HEAD_TEXT_MAX_CHARS),
    }
    if oa.status_value is not None:
        bar = {"status_value": check.text(oa.status_value, f"{p}.status_bar.status_value")}
        if oa.status_bg is not None:
            bar["status_bg"] = check.argb(oa.status_bg, f"{p}.status_bar.status_bg", prefix="0x")
        rendered["status_bar"] = bar
    elif oa.status_bg is not None:
        raise DingTalkValidationError(f"{p}.status_bar.status_value", "is required when status_bg is given")
    rendered["body"] = _oa_body(oa, f"{p}.body")
    return rendered


def _oa_body(oa: OA, p: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if oa.title is not None:
        body["title"] = check.text(oa.title, f"{p}.title")
    if oa.form:
        if len(oa.form) > _FORM_MAX_ROWS:
            raise DingTalkValidationError(
                f"{p}.form", "has too many rows: DingTalk shows 6", size=len(oa.form), limit=_FORM_MAX_ROWS
            )
        body["form"] = [
            {
                "key": check.text(row.key, f"{p}.form[{i}].key"),
                "value": check.text(row.value, f"{p}.form[{i}].value"),
            }
            for i, row in enumerate(oa.form)
        ]
    if oa.rich is not None:
        rich = {"num": check.text(str(oa.rich.num), f"{p}.rich.num")}
        if oa.rich.unit is not None:
            rich["unit"] = check.text(oa.rich.unit, f"{p}.rich.unit")
        body["rich"] = rich
    if oa.content is not None:
        body["content"] = check.text(oa.content, f"{p}.content")
    if oa.image is not None:
        body["image"] = check.text(oa.image, f"{p}.image")
    if oa.file_count is not None:
        if isinstance(oa.file_count, bool) or not isinstance(oa.file_count, int) or oa.file_count < 0:
            raise DingTalkValidationError(f"{p}.file_count", "must be a whole number, 0 or more")
        body["file_count"] = str(oa.file_count)
    if oa.author is not None:
        body["author"] = check.text(oa.author, f"{p}.author")
    return body
