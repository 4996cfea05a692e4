"""Work notifications (asyncsend_v2): the snake_case ``msg`` dialect.

As DingTalk's "Asynchronous sending of enterprise session messages" and "Message types and data
format" pages (help.dingtalk.io) describe the call, its limits and the message bodies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import _checks as check
from airflow_provider_dingtalk.messages.model import (
    OA,
    ActionCard,
    File,
    Image,
    Link,
    Markdown,
    Message,
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


def parse_work_notification(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``msg`` given as a raw dict (e.g. ``{"msgtype": "text", "text": {"content": "hi"}}``).

    Only the envelope and the size are checked; the body is DingTalk's to judge.

    :param raw: the ``msg`` object as DingTalk documents it.
    :returns: a plain JSON-compatible copy, exactly what will be sent.
    :raises DingTalkValidationError: unknown msgtype, missing body, not JSON, or over 2048 bytes.
    """
    if not isinstance(raw, Mapping):
        raise DingTalkValidationError("msg", f"must be a JSON object (dict), not {type(raw).__name__}")
    msgtype = raw.get("msgtype")
    if msgtype not in _MSGTYPES:
        hint = " (work notifications spell it 'action_card')" if msgtype == "actionCard" else ""
        raise DingTalkValidationError(
            "msg.msgtype", f"must be one of {', '.join(_MSGTYPES)}{hint}; got {msgtype!r}"
        )
    if not isinstance(raw.get(msgtype), Mapping):
        raise DingTalkValidationError(f"msg.{msgtype}", f"a {msgtype!r} message needs its {msgtype!r} object")
    try:
        encoded = dumps(_plain(raw))
    except (TypeError, ValueError) as err:
        raise DingTalkValidationError("msg", f"is not JSON-serialisable: {err}") from None
    check.within_bytes(encoded, "msg", WORK_NOTIFICATION_MSG_MAX_BYTES)
    parsed: dict[str, Any] = json.loads(encoded)
    return parsed


def _plain(value: Any) -> Any:
    """Mappings and sequences of any kind as dicts and lists, which is all json.dumps accepts."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


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
