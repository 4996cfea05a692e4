"""Field checks shared by the renderers.

Each check takes the field's path in the JSON being built (``msg.action_card.single_title``), so an
error names the field as the user will find it in DingTalk's docs, and returns the checked value so a
renderer can check and build in one expression. Values are never echoed: URLs may carry tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from airflow_provider_dingtalk._json import utf8_len
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages.model import ActionCard, Button, Message, _Media

_URL_SCHEMES = frozenset({"http", "https", "dingtalk"})
_ARGB = re.compile(r"[0-9A-Fa-f]{8}")

# Limits from DingTalk's action card docs ("Message types and data format" on help.dingtalk.io); the
# custom robot's card is the same widget.
CARD_TITLE_MAX_CHARS = 64
BUTTON_TITLE_MAX_CHARS = 20
BUTTON_URL_MAX_CHARS = 500


def text(value: object, field: str, *, max_chars: int | None = None) -> str:
    """A required, non-blank string of at most ``max_chars`` characters, encodable as UTF-8."""
    if not isinstance(value, str):
        raise DingTalkValidationError(field, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise DingTalkValidationError(field, "must not be empty")
    _utf8(value, field)
    if max_chars is not None and len(value) > max_chars:
        raise DingTalkValidationError(
            field, f"is too long: DingTalk allows {max_chars} characters", size=len(value), limit=max_chars
        )
    return value


def _utf8(value: str, field: str) -> None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DingTalkValidationError(
                field, "is not valid text: it holds a lone surrogate (a half of a UTF-16 pair)"
            ) from None


# What a template renders when a list of ids was not a list of ids (native rendering off).
_MISSING_TEXT = frozenset({"none", "null", "undefined"})
_REPR_MARKS = frozenset("'\"[]{}()")


def id_list(value: object, field: str, *, indexed: bool = False) -> list[str | int]:
    """Recipient ids from a list, or from the text a template renders: ``"u1,u2"`` or JSON ``'["u1","u2"]'``.

    Refused, naming ``field``: text that is a missing value (``"None"``), a Python list's or dict's
    text (``"['u1', 'u2']"``, what Jinja renders for a list unless the DAG renders native objects), a
    mapping (its keys are not recipients), a number or anything else that is not a list, and items
    that are not text or whole numbers, are ``"None"``, hold quotes or brackets, or are not valid text.
    Blank items of a comma-separated string are dropped; the caller decides whether none is an error.

    :param indexed: name an item's error ``field[i]`` rather than ``field``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[object] = _ids_from_text(value, field)
    elif isinstance(value, Mapping | bytes | bytearray) or not isinstance(value, Iterable):
        raise DingTalkValidationError(
            field, f"must be a list of ids or a comma-separated string, not {type(value).__name__}"
        )
    else:
        items = list(value)
    ids: list[str | int] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]" if indexed else field
        if isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
            continue
        if not isinstance(item, str):
            raise DingTalkValidationError(where, f"each id must be text, not {type(item).__name__}")
        _utf8(item, where)
        item = item.strip()
        if item.lower() in _MISSING_TEXT or _REPR_MARKS.intersection(item):
            raise DingTalkValidationError(
                where, f"{item[:40]!r} is not an id: a missing value or a list's text was rendered"
            )
        ids.append(item)
    return ids


def _ids_from_text(value: str, field: str) -> list[object]:
    stripped = value.strip()
    if stripped.lower() in _MISSING_TEXT:
        raise DingTalkValidationError(
            field, f"rendered to {stripped[:20]!r}: the value it was made from is missing"
        )
    if stripped[:1] in ("[", "{", "("):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return list(parsed)
        raise DingTalkValidationError(
            field,
            "is the text of a Python list or dict, not ids: pass the list itself (the DAG's "
            "render_template_as_native_obj=True), or render it as JSON ({{ ids | tojson }}) "
            "or as 'u1,u2' ({{ ids | join(',') }})",
        )
    return [item for item in stripped.split(",") if item.strip()]


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def flag(value: object, field: str) -> bool:
    """A boolean that may arrive as text (params, XCom, a rendered template): ``"false"`` is False.

    Accepts ``True``/``False``, the ints 1 and 0, and (any case, spaces ignored) true/false, 1/0,
    yes/no, on/off. Anything else (``"None"``, ``""``, a typo) is refused: guessing could send to a
    whole organisation.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    shown = repr(value) if isinstance(value, str | int) else type(value).__name__
    raise DingTalkValidationError(
        field, f"must be true or false (or 1/0, yes/no, on/off as text), not {shown[:40]}"
    )


def url(value: object, field: str, *, max_chars: int | None = None) -> str:
    """A required http(s):// URL, or a dingtalk:// link that opens inside DingTalk."""
    checked = text(value, field, max_chars=max_chars)
    scheme, sep, rest = checked.partition("://")
    if not sep or scheme.lower() not in _URL_SCHEMES or not rest or any(c.isspace() for c in checked):
        raise DingTalkValidationError(
            field, "must be an http:// or https:// URL (or dingtalk:// for in-app links) without spaces"
        )
    return checked


def choice(value: object, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DingTalkValidationError(field, f"must be one of {', '.join(map(repr, allowed))}")
    return str(value)


def argb(value: object, field: str, *, prefix: str = "") -> str:
    """An ARGB colour: ``prefix`` then 8 hex digits."""
    checked = text(value, field)
    if not (checked.startswith(prefix) and _ARGB.fullmatch(checked[len(prefix) :])):
        form = f"{prefix!r} followed by 8 hex digits" if prefix else "8 hex digits"
        raise DingTalkValidationError(field, f"must be {form} (ARGB), e.g. {prefix}FFF65E5E")
    return checked


def within_bytes(payload: str, field: str, limit: int) -> None:
    """DingTalk counts UTF-8 bytes of what is sent; refuse before sending rather than be rejected."""
    size = utf8_len(payload)
    if size > limit:
        raise DingTalkValidationError(
            field,
            "is too large once encoded as JSON; shorten the text (fit_text trims to a byte budget)",
            size=size,
            limit=limit,
        )


def card_mode(
    card: ActionCard, *, single_title: str, single_url: str, buttons: str
) -> Literal["single", "multi"]:
    """Exactly one of a single button (title and URL) or a non-empty button list."""
    has_single = card.single_title is not None or card.single_url is not None
    if has_single and card.buttons:
        raise DingTalkValidationError(
            buttons, f"give either {single_title}/{single_url} or buttons, not both"
        )
    if has_single:
        if card.single_title is None:
            raise DingTalkValidationError(single_title, f"is required together with {single_url}")
        if card.single_url is None:
            raise DingTalkValidationError(single_url, f"is required together with {single_title}")
        return "single"
    if not card.buttons:
        raise DingTalkValidationError(
            buttons, f"an action card needs {single_title} and {single_url}, or at least one button"
        )
    return "multi"


def button(btn: object, *, title: str, url_field: str) -> Button:
    if not isinstance(btn, Button):
        raise DingTalkValidationError(title.rpartition(".")[0], f"must be a Button, not {type(btn).__name__}")
    text(btn.title, title, max_chars=BUTTON_TITLE_MAX_CHARS)
    url(btn.url, url_field, max_chars=BUTTON_URL_MAX_CHARS)
    return btn


def uploaded_media_id(message: _Media, field: str) -> str:
    """The media id of an Image/Voice/File; a local path must have been uploaded by now."""
    if message.media_id is not None and message.path is not None:
        raise DingTalkValidationError(field, "give media_id or path, not both")
    if message.media_id is None:
        if message.path is not None:
            raise DingTalkValidationError(
                field,
                "the local file (path) must be uploaded first: upload it and use "
                "message.with_media_id(media_id) (the DingTalk operators do this for you)",
            )
        raise DingTalkValidationError(field, "is required: give media_id, or path to a local file to upload")
    return text(message.media_id, field)


def unsupported(message: object, field: str, dialect: str, hint: str) -> DingTalkValidationError:
    kind = (
        type(message).__name__
        if isinstance(message, Message)
        else f"{type(message).__name__} (not a Message)"
    )
    return DingTalkValidationError(field, f"{dialect} cannot send {kind} messages; {hint}")


def fit_text(text: str, max_bytes: int, *, marker: str = "\n…(truncated)") -> str:
    """Trim ``text`` on a character boundary so that its UTF-8 encoding fits ``max_bytes``.

    Text that fits is returned unchanged; otherwise the kept head is followed by ``marker``, or, when
    even the marker does not fit, the text is cut without it. Sizes are of the text itself: once put in
    JSON, newlines, quotes and backslashes take 2 bytes each, so leave room for escaping or measure the
    rendered message.

    :param text: the text to fit.
    :param max_bytes: the budget in UTF-8 bytes, 0 or more.
    :param marker: appended after a cut so that readers know text is missing.
    """
    if max_bytes < 0:
        raise DingTalkValidationError("max_bytes", "must be 0 or more", size=max_bytes, limit=0)
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    marker_len = utf8_len(marker)
    if marker_len > max_bytes:
        marker, marker_len = "", 0
    # Cutting the bytes may split the last character; "ignore" drops that incomplete tail only.
    return encoded[: max_bytes - marker_len].decode("utf-8", "ignore") + marker
