"""Custom group robot webhook: the camelCase body dialect.

As DingTalk's "Custom robots send group messages" and "Customize robot security settings" pages
(help.dingtalk.io) describe the message types, limits and errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import _checks as check
from airflow_provider_dingtalk.messages import _raw
from airflow_provider_dingtalk.messages._raw import RawObject
from airflow_provider_dingtalk.messages.model import (
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    Link,
    Markdown,
    Mentions,
    Message,
    Text,
)

CUSTOM_ROBOT_MAX_BYTES = 20000
"""The webhook rejects bodies over 20000 bytes (errcode 460101)."""
MSG_UUID_MAX_CHARS = 64
"""The provider's bound on a ``msgUuid``: DingTalk documents none, and 64 fits a UUID or hash in any form."""
_MSG_UUID = re.compile(r"[A-Za-z0-9_-]+")


def to_custom_robot(
    message: Message, *, mentions: Mentions | None = None, msg_uuid: str | None = None
) -> dict[str, Any]:
    """Render ``message`` as a custom-robot webhook body, checked against DingTalk's limits.

    DingTalk only renders an @-mention whose ``@mobile`` / ``@userId`` is in the text, so the ones
    missing from the text are appended to it.

    :param message: Text, Markdown, Link, ActionCard or FeedCard.
    :param mentions: who to @-mention; only Text and Markdown can mention.
    :param msg_uuid: idempotency key, so that a retried send is not shown twice.
    :raises DingTalkValidationError: naming the field, size and limit, before anything is sent.
    """
    if mentions is not None:
        mentions = replace(mentions, at_all=check.flag(mentions.at_all, "at.isAtAll"))
    body: dict[str, Any]
    match message:
        case Text():
            content = check.text(message.content, "text.content")
            body = {"msgtype": "text", "text": {"content": _with_mentions(content, mentions)}}
        case Markdown():
            title = check.text(message.title, "markdown.title")
            text = check.text(message.text, "markdown.text")
            body = {
                "msgtype": "markdown",
                "markdown": {"title": title, "text": _with_mentions(text, mentions)},
            }
        case Link():
            body = {"msgtype": "link", "link": _link(message)}
        case ActionCard():
            body = {"msgtype": "actionCard", "actionCard": _action_card(message)}
        case FeedCard():
            body = {"msgtype": "feedCard", "feedCard": {"links": _feed_links(message.links)}}
        case _:
            raise check.unsupported(
                message,
                "msgtype",
                "The custom robot webhook",
                "send it as a work notification, or use Text, Markdown, Link, ActionCard or FeedCard",
            )
    if mentions is not None:
        if body["msgtype"] in ("text", "markdown"):
            body["at"] = _at(mentions)
        elif mentions.mobiles or mentions.user_ids or mentions.at_all:
            raise DingTalkValidationError(
                "at", f"only Text and Markdown messages can @-mention, not {type(message).__name__}"
            )
    if msg_uuid is not None:
        body["msgUuid"] = check.text(msg_uuid, "msgUuid", max_chars=MSG_UUID_MAX_CHARS)
        if not _MSG_UUID.fullmatch(msg_uuid):
            raise DingTalkValidationError("msgUuid", "may hold only letters, digits, '-' and '_'")
    check.within_bytes(dumps(body), "body", CUSTOM_ROBOT_MAX_BYTES)
    return body


@dataclass(frozen=True, kw_only=True)
class CustomRobotBody:
    """A custom-robot body read by :func:`parse_custom_robot`: what :func:`to_custom_robot` takes.

    :param message: the message.
    :param mentions: the body's ``at``, if it had one.
    :param msg_uuid: the body's ``msgUuid``, if it had one.
    """

    message: Message
    mentions: Mentions | None = None
    msg_uuid: str | None = None


_MSGTYPES = ("text", "markdown", "link", "actionCard", "feedCard")
_ELSEWHERE = "the custom robot cannot send it: send it as a work notification"
_SPELLINGS = {
    "action_card": "the custom robot spells it 'actionCard'",
    **dict.fromkeys(("oa", "image", "voice", "file"), _ELSEWHERE),
}
_BODY_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("content",),
    "markdown": ("title", "text"),
    "link": ("title", "text", "messageUrl", "picUrl"),
    "actionCard": ("title", "text", "singleTitle", "singleURL", "btns", "btnOrientation", "hideAvatar"),
    "feedCard": ("links",),
}


def parse_custom_robot(raw: Mapping[str, Any]) -> CustomRobotBody:
    """Read a custom-robot body given as a raw dict (``{"msgtype": "text", "text": {"content": "hi"},
    "at": {"atMobiles": [...]}}``) into the message model, and check it as :func:`to_custom_robot`
    checks a typed message.

    Every key must be one DingTalk documents for that object (a misspelt key is refused, naming it and
    the closest right one, where DingTalk would send the message without it).

    :param raw: the body as DingTalk's "Custom robots send group messages" page describes it.
    :raises DingTalkValidationError: naming the field, before anything is sent.
    """
    msgtype = _raw.kind(raw, "", "msgtype", _MSGTYPES, "The custom robot webhook", _SPELLINGS)
    top = RawObject(raw, "", ("msgtype", msgtype, "at", "msgUuid"), "a custom robot message")
    body = top.child(msgtype, _BODY_KEYS[msgtype], f"a custom robot {msgtype}")
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
                pic_url=body.get("picUrl"),
            )
        case "actionCard":
            message = ActionCard(
                title=body.required("title"),
                text=body.required("text"),
                single_title=body.get("singleTitle"),
                single_url=body.get("singleURL"),
                buttons=[
                    Button(title=b.required("title"), url=b.required("actionURL"))
                    for b in body.children("btns", ("title", "actionURL"), "a button")
                ],
                btn_orientation=body.get("btnOrientation") or "0",
                hide_avatar=check.flag(body.get("hideAvatar") or False, body.field("hideAvatar")),
            )
        case _:  # "feedCard", the last of _MSGTYPES
            links = body.children("links", ("title", "messageURL", "picURL"), "a feed card link")
            message = FeedCard(
                links=[
                    FeedLink(
                        title=link.required("title"),
                        message_url=link.required("messageURL"),
                        pic_url=link.required("picURL"),
                    )
                    for link in links
                ]
            )
    parsed = CustomRobotBody(message=message, mentions=_parse_at(top), msg_uuid=top.get("msgUuid"))
    to_custom_robot(parsed.message, mentions=parsed.mentions, msg_uuid=parsed.msg_uuid)
    return parsed


def _parse_at(top: RawObject) -> Mentions | None:
    if top.get("at") is None:
        return None
    at = top.child("at", ("atMobiles", "atUserIds", "isAtAll"), "a custom robot message's at")
    return Mentions(
        mobiles=[str(i) for i in check.id_list(at.get("atMobiles"), at.field("atMobiles"))],
        user_ids=[str(i) for i in check.id_list(at.get("atUserIds"), at.field("atUserIds"))],
        at_all=check.flag(at.get("isAtAll") or False, at.field("isAtAll")),
    )


def _with_mentions(text: str, mentions: Mentions | None) -> str:
    if mentions is None:
        return text
    missing = []
    for field, values in (("at.atMobiles", mentions.mobiles), ("at.atUserIds", mentions.user_ids)):
        for i, value in enumerate(values):
            tag = "@" + check.text(value, f"{field}[{i}]")
            # "@user" must not count as present because "@user2" is: require a non-id char after it.
            if not re.search(re.escape(tag) + r"(?![\w-])", text, flags=re.ASCII):
                missing.append(tag)
    return f"{text}\n\n{' '.join(missing)}" if missing else text


def _at(mentions: Mentions) -> dict[str, Any]:
    return {
        "atMobiles": list(mentions.mobiles),
        "atUserIds": list(mentions.user_ids),
        "isAtAll": mentions.at_all,
    }


def _link(link: Link) -> dict[str, str]:
    body = {
        "title": check.text(link.title, "link.title"),
        "text": check.text(link.text, "link.text"),
        "messageUrl": check.url(link.message_url, "link.messageUrl"),
    }
    if link.pic_url is not None:
        body["picUrl"] = check.url(link.pic_url, "link.picUrl")
    return body


def _action_card(card: ActionCard) -> dict[str, Any]:
    p = "actionCard"
    body: dict[str, Any] = {
        "title": check.text(card.title, f"{p}.title", max_chars=check.CARD_TITLE_MAX_CHARS),
        "text": check.text(card.text, f"{p}.text"),
    }
    mode = check.card_mode(
        card, single_title=f"{p}.singleTitle", single_url=f"{p}.singleURL", buttons=f"{p}.btns"
    )
    if mode == "single":
        body["singleTitle"] = check.text(
            card.single_title, f"{p}.singleTitle", max_chars=check.BUTTON_TITLE_MAX_CHARS
        )
        body["singleURL"] = check.url(card.single_url, f"{p}.singleURL", max_chars=check.BUTTON_URL_MAX_CHARS)
    else:
        buttons = []
        for i, btn in enumerate(card.buttons):
            check.button(btn, title=f"{p}.btns[{i}].title", url_field=f"{p}.btns[{i}].actionURL")
            buttons.append({"title": btn.title, "actionURL": btn.url})
        body["btns"] = buttons
    body["btnOrientation"] = check.choice(card.btn_orientation, f"{p}.btnOrientation", ("0", "1"))
    body["hideAvatar"] = "1" if check.flag(card.hide_avatar, f"{p}.hideAvatar") else "0"
    return body


def _feed_links(links: Sequence[object]) -> list[dict[str, str]]:
    if not links:
        raise DingTalkValidationError("feedCard.links", "needs at least one link")
    rendered = []
    for i, link in enumerate(links):
        p = f"feedCard.links[{i}]"
        if not isinstance(link, FeedLink):
            raise DingTalkValidationError(p, f"must be a FeedLink, not {type(link).__name__}")
        rendered.append(
            {
                "title": check.text(link.title, f"{p}.title"),
                "messageURL": check.url(link.message_url, f"{p}.messageURL"),
                "picURL": check.url(link.pic_url, f"{p}.picURL"),
            }
        )
    return rendered
