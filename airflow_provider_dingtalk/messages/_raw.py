"""Reading a raw DingTalk message dict, one JSON object at a time, for the parsers.

A parser turns a dict written in one of DingTalk's dialects into the message model, which the
renderer then checks against DingTalk's limits. Reading is strict where DingTalk would be silent: a
key the object does not have (a misspelling, or another dialect's spelling) is refused naming the
field, because DingTalk ignores unknown keys and the message would go out without that part.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError


class RawObject:
    """One JSON object of a raw message: its keys are checked against ``keys`` when it is opened.

    :param raw: the object as the user gave it.
    :param path: its place in the message (``msg.action_card``), used to name fields in errors.
    :param keys: the keys DingTalk documents for this object.
    :param what: the object's name for errors (``"a work notification's action_card"``).
    """

    def __init__(self, raw: object, path: str, keys: Sequence[str], what: str) -> None:
        if not isinstance(raw, Mapping):
            raise DingTalkValidationError(path, f"must be a JSON object (dict), not {type(raw).__name__}")
        for key in raw:
            if key not in keys:
                raise DingTalkValidationError(self._join(path, str(key)), unknown_key(str(key), keys, what))
        self.raw = raw
        self.path = path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def field(self, key: str) -> str:
        """The path of ``key`` in the message, as errors name it."""
        return self._join(self.path, key)

    def get(self, key: str) -> Any:
        """The value under ``key`` as given (``Any``: the renderer checks its type), or ``None``."""
        return self.raw.get(key)

    def required(self, key: str) -> Any:
        value = self.raw.get(key)
        if value is None:
            raise DingTalkValidationError(self.field(key), "is required")
        return value

    def child(self, key: str, keys: Sequence[str], what: str, *, required: bool = True) -> RawObject:
        """The object under ``key``; when it is optional and missing, an empty one."""
        value = self.required(key) if required else self.raw.get(key)
        return RawObject({} if value is None else value, self.field(key), keys, what)

    def children(self, key: str, keys: Sequence[str], what: str) -> list[RawObject]:
        """The list of objects under ``key`` (missing means none)."""
        items = self.get(key)
        if items is None:
            return []
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
            raise DingTalkValidationError(
                self.field(key), f"must be a list of objects, not {type(items).__name__}"
            )
        return [RawObject(item, f"{self.field(key)}[{i}]", keys, what) for i, item in enumerate(items)]

    def whole_number(self, key: str, *, required: bool = False) -> Any:
        """A count that DingTalk's samples write as text (``"10"``) or a number; ``None`` if missing."""
        value = self.required(key) if required else self.raw.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        raise DingTalkValidationError(self.field(key), "must be a whole number")


def unknown_key(key: str, keys: Sequence[str], what: str) -> str:
    """Why ``key`` is refused: not one of ``keys``, with the closest one if it looks like a typo."""
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6) or [
        k for k in keys if k.lower() == key.lower()
    ]
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"is not a field of {what}{guess}; it has {', '.join(map(repr, keys))}. DingTalk would ignore it "
        "and send the message without it"
    )


def json_object(value: object, field: str) -> object:
    """A nested object that DingTalk's API carries as a JSON string (``msgParam``), or the object itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise DingTalkValidationError(field, "is a string but not a JSON object") from None


def kind(
    raw: object, path: str, key: str, allowed: Sequence[str], dialect: str, hints: Mapping[str, str]
) -> str:
    """The message type of a raw dict (its ``msgtype`` or ``msgKey``), one of ``allowed``.

    :param hints: what to say about a type this dialect does not take (another dialect's spelling,
        a type only another channel sends, one the message model cannot express).
    """
    if not isinstance(raw, Mapping):
        raise DingTalkValidationError(
            path or "message", f"must be a JSON object (dict), not {type(raw).__name__}"
        )
    value = raw.get(key)
    if value in allowed:
        return str(value)
    hint = f"; {hints[value]}" if isinstance(value, str) and value in hints else ""
    raise DingTalkValidationError(
        RawObject._join(path, key),
        f"{dialect} takes {', '.join(map(repr, allowed))}, not {str(value)[:40]!r}{hint}",
    )
