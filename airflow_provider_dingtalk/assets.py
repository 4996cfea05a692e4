"""The ``dingtalk`` asset URI scheme: ``dingtalk://events/<EventType>``, one asset per event type, and
``dingtalk://robot/messages`` for messages to the app robot (Stream mode).

Airflow calls :func:`sanitize_uri` (registered under ``asset-uris`` in the provider info) whenever an
``Asset`` with a ``dingtalk://`` URI is made, after its own generic clean-up (lower-case scheme, no
trailing slash, no fragment). The receivers write events to exactly ``event_asset_uri(EventType)`` and
robot messages to ``ROBOT_MESSAGE_ASSET_URI``, so a URI of any other shape would never be updated
and its DAG would never run: such a URI is refused when the DAG file is parsed, with the reason.

Light on purpose: Airflow imports it in every process that builds assets.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_dingtalk.event_types import EVENT_ASSET_PREFIX, ROBOT_MESSAGE_ASSET_URI

if TYPE_CHECKING:
    from urllib.parse import SplitResult

__all__ = ["sanitize_uri"]

_EVENTS_HOST = EVENT_ASSET_PREFIX.removeprefix("dingtalk://").rstrip("/")
# DingTalk's EventType values (``call_back_tag``) are lower-case snake case: user_add_org, bpms_task_change.
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*")


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Check a ``dingtalk://`` asset URI and return it normalised (host in lower case).

    :param uri: the URI as Airflow split it.
    :raises ValueError: the URI is neither ``dingtalk://events/<EventType>`` nor
        ``dingtalk://robot/messages``; the message says why.
    """
    example = f"{EVENT_ASSET_PREFIX}bpms_instance_change"
    host = (uri.hostname or "").lower()
    normalised = uri._replace(netloc=host)
    if normalised.geturl() == ROBOT_MESSAGE_ASSET_URI:
        return normalised
    if host != _EVENTS_HOST or uri.netloc.lower() != host:
        raise ValueError(
            f"DingTalk asset URI {uri.geturl()!r}: the host must be {_EVENTS_HOST!r} with no user or "
            f"port, as in {example!r} (or the URI is {ROBOT_MESSAGE_ASSET_URI!r})"
        )
    if uri.query:
        raise ValueError(
            f"DingTalk asset URI {uri.geturl()!r}: no query string (the receiver writes events to "
            f"{EVENT_ASSET_PREFIX}<EventType> only)"
        )
    event_type = uri.path.removeprefix("/")
    if not _EVENT_TYPE.fullmatch(event_type):
        raise ValueError(
            f"DingTalk asset URI {uri.geturl()!r}: the path must be one DingTalk EventType in lower-case "
            f"snake case, as in {example!r}; got {event_type!r}"
        )
    return normalised
