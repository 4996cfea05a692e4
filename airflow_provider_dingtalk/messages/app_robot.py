"""App (enterprise) robot, v1.0 API: ``msgKey`` plus ``msgParam`` as a JSON string.

As DingTalk's "Chatbots send one-on-one chat messages in batches", "The robot sends a group message"
and "Robot message type" pages (help.dingtalk.io) describe them. The action-card keys
(``sampleActionCard2``..``5`` with ``actionTitleN``/``actionURLN``, ``sampleActionCard6`` with
``buttonTitleN``/``buttonUrlN``) are not confirmed by those pages;
they match public client code sending them. ``sampleAudio`` and ``sampleFile`` field names could not
be confirmed, so Voice and File are refused here rather than sent in a guessed shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import _checks as check
from airflow_provider_dingtalk.messages import _raw
from airflow_provider_dingtalk.messages._raw import RawObject
from airflow_provider_dingtalk.messages.model import ActionCard, Button, Image, Link, Markdown, Message, Text

APP_ROBOT_MSG_PARAM_MAX_BYTES = 15000
"""``msgParam`` (the JSON string) may be at most 15000 bytes."""

_MAX_BUTTONS = 5
_P = "msgParam"


def to_app_robot(message: Message) -> tuple[str, str]:
    """Render ``message`` as ``(msgKey, msgParam)`` for the app robot's send APIs.

    An action card with one button in ``buttons`` is sent as a single-button card; 2 to 5 vertical
    buttons, or exactly 2 horizontal ones, are what the app robot's card templates offer.

    :param message: Text, Markdown, Link, Image (``pic_url`` or ``media_id``) or ActionCard.
    :returns: ``msgKey`` and ``msgParam``, the latter already a JSON string as the API wants.
    :raises DingTalkValidationError: naming the field, size and limit, before anything is sent.
    """
    key: str
    param: dict[str, Any]
    match message:
        case Text():
            key, param = "sampleText", {"content": check.text(message.content, f"{_P}.content")}
        case Markdown():
            key = "sampleMarkdown"
            param = {
                "title": check.text(message.title, f"{_P}.title"),
                "text": check.text(message.text, f"{_P}.text"),
            }
        case Link():
            key, param = "sampleLink", _link(message)
        case Image():
            key, param = "sampleImageMsg", {"photoURL": _photo(message)}
        case ActionCard():
            key, param = _action_card(message)
        case _:
            raise check.unsupported(
                message,
                "msgKey",
                "The app robot",
                "use Text, Markdown, Link, Image or ActionCard, or send it as a work notification",
            )
    encoded = dumps(param)
    check.within_bytes(encoded, _P, APP_ROBOT_MSG_PARAM_MAX_BYTES)
    return key, encoded


_CARD = ("title", "text")
_PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleLink": ("text", "title", "picUrl", "messageUrl"),
    "sampleImageMsg": ("photoURL",),
    "sampleActionCard": (*_CARD, "singleTitle", "singleURL"),
    **{
        f"sampleActionCard{n}": (
            *_CARD,
            *(f"action{k}{i}" for i in range(1, n + 1) for k in ("Title", "URL")),
        )
        for n in range(2, _MAX_BUTTONS + 1)
    },
    "sampleActionCard6": (*_CARD, "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"),
}
_NOT_MODELLED = (
    "the provider's message model cannot express it (DingTalk's field names for it could not be "
    "confirmed); send it as a work notification (Voice or File)"
)
_OTHER_DIALECT = (
    "a msgtype dict is the custom robot's or a work notification's; the app robot takes "
    "{'msgKey': 'sampleText', 'msgParam': {'content': ...}}"
)
_HINTS = {
    **dict.fromkeys(("sampleAudio", "sampleFile", "sampleVideo"), _NOT_MODELLED),
    **dict.fromkeys(("text", "markdown", "link", "actionCard", "action_card", "oa", "image"), _OTHER_DIALECT),
}


def parse_app_robot(raw: Mapping[str, Any]) -> Message:
    """Read an app-robot message given as a raw dict (``{"msgKey": "sampleText", "msgParam":
    {"content": "hi"}}``; ``msgParam`` may be the JSON string the API carries) into the message
    model, and check it as :func:`to_app_robot` checks a typed message.

    Every key must be one DingTalk documents for that ``msgKey`` (a misspelt key is refused, naming it
    and the closest right one). Keys the model cannot express (``sampleAudio``, ``sampleFile``,
    ``sampleVideo``) are refused, saying so.

    :param raw: ``msgKey`` and ``msgParam`` as DingTalk's "Robot message type" page describes them.
    :raises DingTalkValidationError: naming the field, before anything is sent.
    """
    if isinstance(raw, Mapping) and "msgKey" not in raw and "msgtype" in raw:
        raise DingTalkValidationError("msgKey", f"is missing: {_OTHER_DIALECT}")
    key = _raw.kind(raw, "", "msgKey", tuple(_PARAM_KEYS), "The app robot", _HINTS)
    top = RawObject(raw, "", ("msgKey", _P), "an app robot message")
    param = RawObject(_raw.json_object(top.required(_P), _P), _P, _PARAM_KEYS[key], f"an app robot {key}")
    message: Message
    match key:
        case "sampleText":
            message = Text(content=param.required("content"))
        case "sampleMarkdown":
            message = Markdown(title=param.required("title"), text=param.required("text"))
        case "sampleLink":
            message = Link(
                title=param.required("title"),
                text=param.required("text"),
                message_url=param.required("messageUrl"),
                pic_url=param.required("picUrl"),
            )
        case "sampleImageMsg":
            photo = param.required("photoURL")
            # The API takes a public URL or an uploaded media id in the same field.
            is_url = isinstance(photo, str) and "://" in photo
            message = Image(pic_url=photo) if is_url else Image(media_id=photo)
        case "sampleActionCard":
            message = ActionCard(
                title=param.required("title"),
                text=param.required("text"),
                single_title=param.required("singleTitle"),
                single_url=param.required("singleURL"),
            )
        case "sampleActionCard6":
            message = ActionCard(
                title=param.required("title"),
                text=param.required("text"),
                buttons=[
                    Button(title=param.required(f"buttonTitle{n}"), url=param.required(f"buttonUrl{n}"))
                    for n in (1, 2)
                ],
                btn_orientation="1",
            )
        case _:  # sampleActionCard2 to 5
            message = ActionCard(
                title=param.required("title"),
                text=param.required("text"),
                buttons=[
                    Button(title=param.required(f"actionTitle{n}"), url=param.required(f"actionURL{n}"))
                    for n in range(1, int(key[-1]) + 1)
                ],
            )
    to_app_robot(message)
    return message


def _link(link: Link) -> dict[str, str]:
    # sampleLink's four fields are all required ("机器人发送消息的类型"); only the custom robot's is optional.
    text = check.text(link.text, f"{_P}.text")
    title = check.text(link.title, f"{_P}.title")
    message_url = check.url(link.message_url, f"{_P}.messageUrl")
    if link.pic_url is None:
        raise DingTalkValidationError(
            f"{_P}.picUrl", "is required by the app robot's sampleLink: give pic_url"
        )
    return {
        "text": text,
        "title": title,
        "picUrl": check.url(link.pic_url, f"{_P}.picUrl"),
        "messageUrl": message_url,
    }


def _photo(image: Image) -> str:
    # A public URL needs no upload, so it wins when both are given (the same Image can then also be
    # rendered as a work notification, which needs the media id).
    if image.pic_url is not None:
        return check.url(image.pic_url, f"{_P}.photoURL")
    return check.uploaded_media_id(image, f"{_P}.photoURL")


def _action_card(card: ActionCard) -> tuple[str, dict[str, Any]]:
    param: dict[str, Any] = {
        "title": check.text(card.title, f"{_P}.title", max_chars=check.CARD_TITLE_MAX_CHARS),
        "text": check.text(card.text, f"{_P}.text"),
    }
    mode = check.card_mode(
        card, single_title=f"{_P}.singleTitle", single_url=f"{_P}.singleURL", buttons="buttons"
    )
    if mode == "single" or len(card.buttons) == 1:
        title, url = card.single_title, card.single_url
        if mode == "multi":
            btn = check.button(card.buttons[0], title=f"{_P}.singleTitle", url_field=f"{_P}.singleURL")
            title, url = btn.title, btn.url
        param["singleTitle"] = check.text(title, f"{_P}.singleTitle", max_chars=check.BUTTON_TITLE_MAX_CHARS)
        param["singleURL"] = check.url(url, f"{_P}.singleURL", max_chars=check.BUTTON_URL_MAX_CHARS)
        return "sampleActionCard", param
    count = len(card.buttons)
    if count > _MAX_BUTTONS:
        raise DingTalkValidationError(
            "buttons", "the app robot's cards have at most 5 buttons", size=count, limit=_MAX_BUTTONS
        )
    orientation = check.choice(card.btn_orientation, "btn_orientation", ("0", "1"))
    if orientation == "1":
        if count != 2:
            raise DingTalkValidationError(
                "btn_orientation",
                f"the app robot lays out exactly 2 buttons horizontally, not {count}; "
                "use btn_orientation='0'",
            )
        for n, btn in enumerate(card.buttons, start=1):
            check.button(btn, title=f"{_P}.buttonTitle{n}", url_field=f"{_P}.buttonUrl{n}")
            param[f"buttonTitle{n}"] = btn.title
            param[f"buttonUrl{n}"] = btn.url
        return "sampleActionCard6", param
    for n, btn in enumerate(card.buttons, start=1):
        check.button(btn, title=f"{_P}.actionTitle{n}", url_field=f"{_P}.actionURL{n}")
        param[f"actionTitle{n}"] = btn.title
        param[f"actionURL{n}"] = btn.url
    return f"sampleActionCard{count}", param
