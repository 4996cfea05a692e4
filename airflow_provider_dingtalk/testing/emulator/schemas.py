"""The message bodies DingTalk accepts, per dialect and type: field names, required fields and limits.

One table per API, used by its endpoint module, which turns a :class:`Problem` into the error that
API gives. Where DingTalk's docs leave a point open the emulator is stricter than DingTalk may be, so
that a client passing here passes there:

* Unknown keys are refused. DingTalk silently ignores most of them, which is exactly how a typo
  (``singleUrl`` for ``singleURL``, ``picURL`` for ``picUrl``) loses a field without any error.
* Fields the docs show in every sample are required even where the docs do not say so
  (``link.picUrl`` of a work notification, ``picUrl`` of the app robot's ``sampleLink``).
* The action card's widget limits (title 64, button title 20, button URL 500 characters; DingTalk's
  "发送工作通知" and "自定义机器人发送群消息" pages) apply to all three dialects.

Sources: "发送工作通知" / "消息类型与数据格式" (work notification ``msg``), "自定义机器人发送群消息"
(custom robot), "机器人发送消息的类型" (app robot ``msgKey``, open.dingtalk.com/document/orgapp/
robot-message-type). Field names of ``sampleActionCard2``..``6``, ``sampleAudio``, ``sampleFile`` and
``sampleVideo`` come from that last page as mirrored by public clients; they are not confirmed by a
second source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["str", "digits", "bool", "object", "list"]


@dataclass(frozen=True, kw_only=True)
class Field:
    """One key of a body: its JSON type, whether it must be there, and DingTalk's limit."""

    kind: Kind = "str"
    required: bool = True
    max_chars: int | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    # For "object": its keys; for "list": the keys of each item (None: a list of strings).
    fields: Mapping[str, Field] | None = None
    digit_range: tuple[int, int] | None = None


@dataclass(frozen=True, kw_only=True)
class Body:
    """A message body; ``variants`` (action cards: one button or a list) are chosen by their first key."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    variants: tuple[Mapping[str, Field], ...] = ()


@dataclass(frozen=True)
class Problem:
    """What is wrong, at which key path (``action_card.single_url``), in DingTalk's terms."""

    path: str
    reason: Literal["missing", "type", "too_long", "unknown", "choice"]
    limit: int | None = None

    def describe(self) -> str:
        """The reason in DingTalk's words, without the path."""
        return {
            "missing": "缺失",
            "type": "格式不正确",
            "too_long": f"长度超过 {self.limit} 个字符",
            "unknown": "不是合法的参数",
            "choice": "取值不合法",
        }[self.reason]


def _s(**kw: Any) -> Field:
    return Field(kind="str", **kw)


def _opt(**kw: Any) -> Field:
    return Field(kind="str", required=False, **kw)


_TITLE = _s(max_chars=64)
_BUTTON_TITLE = _s(max_chars=20)
_BUTTON_URL = _s(max_chars=500)
_ORIENTATION = ("0", "1")

# ---------------------------------------------------------------- work notification msg (asyncsend_v2)

WORK_NOTIFICATION: dict[str, Body] = {
    "text": Body(fields={"content": _s()}),
    "image": Body(fields={"media_id": _s()}),
    # "正整数，小于60": the duration is a string of whole seconds, 1 to 59.
    "voice": Body(fields={"media_id": _s(), "duration": Field(kind="digits", digit_range=(1, 59))}),
    "file": Body(fields={"media_id": _s()}),
    # The one camelCase body of this dialect (TOP SDK class Link).
    "link": Body(fields={"messageUrl": _s(), "picUrl": _s(), "title": _s(), "text": _s()}),
    "markdown": Body(fields={"title": _s(), "text": _s()}),
    "action_card": Body(
        fields={"title": _TITLE, "markdown": _s()},
        variants=(
            {"single_title": _BUTTON_TITLE, "single_url": _BUTTON_URL},
            {
                "btn_orientation": Field(choices=_ORIENTATION),
                "btn_json_list": Field(
                    kind="list", fields={"title": _BUTTON_TITLE, "action_url": _BUTTON_URL}
                ),
            },
        ),
    ),
    "oa": Body(
        fields={
            "message_url": _s(),
            "pc_message_url": _opt(),
            "head": Field(
                kind="object",
                fields={"bgcolor": _s(pattern=r"[0-9A-Fa-f]{8}"), "text": _s(max_chars=10)},
            ),
            "status_bar": Field(
                kind="object",
                required=False,
                fields={"status_value": _s(), "status_bg": _opt(pattern=r"0x[0-9A-Fa-f]{8}")},
            ),
            "body": Field(
                kind="object",
                fields={
                    "title": _opt(),
                    "form": Field(kind="list", required=False, fields={"key": _s(), "value": _s()}),
                    "rich": Field(kind="object", required=False, fields={"num": _s(), "unit": _opt()}),
                    "content": _opt(),
                    "image": _opt(),
                    "file_count": Field(kind="digits", required=False),
                    "author": _opt(),
                },
            ),
        }
    ),
}

# ---------------------------------------------------------------- custom robot webhook (camelCase)

CUSTOM_ROBOT: dict[str, Body] = {
    "text": Body(fields={"content": _s()}),
    "link": Body(fields={"title": _s(), "text": _s(), "messageUrl": _s(), "picUrl": _opt()}),
    "markdown": Body(fields={"title": _s(), "text": _s()}),
    "actionCard": Body(
        fields={
            "title": _TITLE,
            "text": _s(),
            "btnOrientation": _opt(choices=_ORIENTATION),
            "hideAvatar": _opt(choices=("0", "1")),
        },
        variants=(
            # DingTalk documents that singleTitle/singleURL make btns ignored, so both may be present.
            {
                "singleTitle": _BUTTON_TITLE,
                "singleURL": _BUTTON_URL,
                "btns": Field(kind="list", required=False, fields={"title": _s(), "actionURL": _s()}),
            },
            {"btns": Field(kind="list", fields={"title": _BUTTON_TITLE, "actionURL": _BUTTON_URL})},
        ),
    ),
    "feedCard": Body(
        fields={
            "links": Field(kind="list", fields={"title": _s(), "messageURL": _s(), "picURL": _s()}),
        }
    ),
}

CUSTOM_ROBOT_AT = Body(
    fields={
        "atMobiles": Field(kind="list", required=False),
        "atUserIds": Field(kind="list", required=False),
        "isAtAll": Field(kind="bool", required=False),
    }
)
"""``at`` beside the message; DingTalk only honours it on text and markdown, and ignores it elsewhere."""

# ---------------------------------------------------------------- app robot msgParam (v1.0)


def _numbered(prefix_title: str, prefix_url: str, count: int) -> dict[str, Field]:
    keys: dict[str, Field] = {"title": _TITLE, "text": _s()}
    for n in range(1, count + 1):
        keys[f"{prefix_title}{n}"] = _BUTTON_TITLE
        keys[f"{prefix_url}{n}"] = _BUTTON_URL
    return keys


APP_ROBOT: dict[str, Body] = {
    "sampleText": Body(fields={"content": _s()}),
    "sampleMarkdown": Body(fields={"title": _s(), "text": _s()}),
    "sampleImageMsg": Body(fields={"photoURL": _s()}),
    "sampleLink": Body(fields={"text": _s(), "title": _s(), "picUrl": _s(), "messageUrl": _s()}),
    "sampleActionCard": Body(
        fields={"title": _TITLE, "text": _s(), "singleTitle": _BUTTON_TITLE, "singleURL": _BUTTON_URL}
    ),
    **{f"sampleActionCard{n}": Body(fields=_numbered("actionTitle", "actionURL", n)) for n in range(2, 6)},
    "sampleActionCard6": Body(fields=_numbered("buttonTitle", "buttonUrl", 2)),
    "sampleAudio": Body(fields={"mediaId": _s(), "duration": Field(kind="digits")}),
    "sampleFile": Body(fields={"mediaId": _s(), "fileName": _s(), "fileType": _s()}),
    "sampleVideo": Body(
        fields={"duration": Field(kind="digits"), "videoMediaId": _s(), "videoType": _s(), "picMediaId": _s()}
    ),
}


# ---------------------------------------------------------------- checking


def check_body(body: Any, schema: Body, path: str) -> Problem | None:
    """The first problem of ``body`` against ``schema`` (keys in schema order), or ``None``."""
    if not isinstance(body, dict):
        return Problem(path, "type")
    keys = dict(schema.fields)
    if schema.variants:
        chosen = next((v for v in schema.variants if next(iter(v)) in body), schema.variants[0])
        keys.update(chosen)
    return _check_object(body, keys, path)


def _check_object(value: dict[str, Any], keys: Mapping[str, Field], path: str) -> Problem | None:
    for name, spec in keys.items():
        where = f"{path}.{name}"
        if name not in value or value[name] is None:
            if spec.required:
                return Problem(where, "missing")
            continue
        problem = _check_value(value[name], spec, where)
        if problem:
            return problem
    for name in value:
        if name not in keys:
            return Problem(f"{path}.{name}", "unknown")
    return None


def _check_value(value: Any, spec: Field, path: str) -> Problem | None:
    if spec.kind == "bool":
        return None if isinstance(value, bool) else Problem(path, "type")
    if spec.kind == "object":
        if not isinstance(value, dict):
            return Problem(path, "type")
        return _check_object(value, spec.fields or {}, path)
    if spec.kind == "list":
        return _check_list(value, spec, path)
    if spec.kind == "digits":
        # DingTalk takes these as strings ("10"); a JSON number is accepted too, as its gateway converts.
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isdigit():
            return Problem(path, "type")
        low, high = spec.digit_range or (0, None)
        if int(text) < low or (high is not None and int(text) > high):
            return Problem(path, "choice")
        return None
    if not isinstance(value, str) or not value.strip():
        return Problem(path, "missing" if value == "" else "type")
    if spec.max_chars is not None and len(value) > spec.max_chars:
        return Problem(path, "too_long", spec.max_chars)
    if spec.choices is not None and value not in spec.choices:
        return Problem(path, "choice")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return Problem(path, "type")
    return None


def _check_list(value: Any, spec: Field, path: str) -> Problem | None:
    if not isinstance(value, list) or (spec.required and not value):
        return Problem(path, "missing" if value == [] else "type")
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if spec.fields is None:
            if not isinstance(item, str):
                return Problem(where, "type")
        elif not isinstance(item, dict):
            return Problem(where, "type")
        else:
            problem = _check_object(item, spec.fields, where)
            if problem:
                return problem
    return None
