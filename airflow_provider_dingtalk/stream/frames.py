"""Stream-mode frames: what DingTalk sends down the socket and the acks we send back.

From DingTalk's protocol description ("Stream 模式协议说明", github.com/open-dingtalk/developerpedia
``docs/learn/stream/protocol.md``): every downstream frame is a JSON object
``{"specVersion", "type", "headers", "data"}`` whose ``data`` is a JSON *string* and whose header values
are strings; each frame with a ``messageId`` gets one ack ``{"code", "headers", "message", "data"}``.
Unknown frame types and headers are kept, not refused: DingTalk adds them without notice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENT_LATER", "EVENT_SUCCESS", "StreamFrame", "StreamProtocolError", "ack_frame", "parse_frame"]

# The ack ``data`` of an EVENT: SUCCESS ends it, LATER asks DingTalk to push it again later.
EVENT_SUCCESS = json.dumps({"status": "SUCCESS", "message": "success"})
EVENT_LATER = json.dumps({"status": "LATER", "message": "later"})


class StreamProtocolError(ValueError):
    """A frame that is not a JSON object; the text is not repeated (it could hold anything)."""


@dataclass(frozen=True, kw_only=True)
class StreamFrame:
    """One downstream frame.

    :param type: ``EVENT``, ``CALLBACK``, ``SYSTEM``, or a type DingTalk adds later.
    :param topic: ``*`` for events, the callback topic (``/v1.0/im/bot/messages/get``), ``ping``,
        ``disconnect``.
    :param message_id: what the ack must carry; empty when the frame has none.
    :param headers: every header, as strings.
    :param data: the ``data`` string, not decoded (see :meth:`json`).
    """

    type: str
    topic: str
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    data: str = ""

    def json(self) -> Any:
        """``data`` decoded; ``{}`` when it is empty.

        :raises StreamProtocolError: ``data`` is not JSON.
        """
        if not self.data:
            return {}
        try:
            return json.loads(self.data)
        except (ValueError, RecursionError):
            raise StreamProtocolError(f"{self.type} frame {self.message_id!r}: data is not JSON") from None


def parse_frame(raw: str | bytes) -> StreamFrame:
    """Read one frame; header values become strings, a ``data`` object is re-encoded as a string.

    :raises StreamProtocolError: not JSON, or not an object.
    """
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise StreamProtocolError("Stream frame is not JSON") from None
    if not isinstance(body, dict):
        raise StreamProtocolError("Stream frame is not a JSON object")
    raw_headers = body.get("headers")
    headers = {str(k): _text(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
    data = body.get("data")
    return StreamFrame(
        type=_text(body.get("type")),
        topic=headers.get("topic", ""),
        message_id=headers.get("messageId", ""),
        headers=headers,
        data=data if isinstance(data, str) else ("" if data is None else json.dumps(data)),
    )


def ack_frame(message_id: str, *, data: str, code: int = 200, message: str = "OK") -> str:
    """The ack text for the frame ``message_id``."""
    headers = {"messageId": message_id, "contentType": "application/json"}
    return json.dumps({"code": code, "headers": headers, "message": message, "data": data})


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
