"""DingTalk events and robot messages as asset events, received over Stream mode (no public URL).

Schedule a DAG on them through Airflow's ``AssetWatcher``::

    Asset(event_asset_uri("bpms_instance_change"), watchers=[AssetWatcher(
        name="approvals", trigger=DingTalkStreamEventTrigger(event_types=["bpms_instance_change"]))])

The asset URIs (``dingtalk://events/<EventType>``) and the payload (the flat event with ``EventType``,
``corpId`` and the business fields) are those of the HTTP receiver (:mod:`airflow_provider_dingtalk.events`),
so a DAG reads ``triggering_asset_events[...][0].extra["payload"]`` the same way whichever brought it.

**When an event is acked.** DingTalk pushes an un-acked event again, so the ack is the hand-over. The
trigger acks after its ``yield`` returns: Airflow's triggerer pulls the next item from ``run()`` only
once it has put the yielded event in its queue for the database. The remaining window (the
triggerer dies before its next sync to the database, about a second) loses that event; a crash before
the yield returns loses nothing, DingTalk redelivers.

**One connection per app and triggerer.** DingTalk sends each event to *one* of an app's connections.
If every trigger had its own, a trigger for ``bpms_task_change`` could take (and ack) the
``bpms_instance_change`` event another trigger waits for. So all Stream triggers of one connection in
a triggerer share one client (:class:`_Hub`); each event is acked once every trigger has passed it on
or filtered it out. The approval poller's wake-ups (:func:`consume_events`) are one more consumer of
the same client, done with an event as soon as it has looked at it. Triggers of the same app on
*different* triggerer hosts still split the events: give each app's Stream triggers to one triggerer
(a ``queue``), or use one trigger for all event types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_provider_dingtalk.stream.client import DingTalkStreamClient, StreamMessage
    from airflow_provider_dingtalk.stream.frames import StreamFrame

__all__ = [
    "DingTalkStreamEventTrigger",
    "DingTalkStreamRobotMessageTrigger",
    "consume_events",
    "robot_payload",
    "stream_event",
]

log = logging.getLogger(__name__)

_ENVELOPE_KEYS = ("EventType", "CorpId", "corpId")  # the HTTP envelope, if DingTalk repeats it in data
_EVENTS = "events"  # the hub of a connection's EVENT client, whoever consumes it


def stream_event(frame: StreamFrame) -> dict[str, Any]:
    """The payload of an EVENT frame, shaped like the HTTP receiver's decrypted event.

    ``EventType`` and ``corpId`` as in an HTTP push, the business fields of ``data``, and the Stream
    headers ``eventId``, ``eventType``, ``eventBornTime`` (ms, an int).

    :raises StreamProtocolError: ``data`` is not a JSON object.
    """
    from airflow_provider_dingtalk.stream.frames import StreamProtocolError

    data = frame.json()
    if not isinstance(data, dict):
        raise StreamProtocolError(f"event {frame.headers.get('eventId')!r}: data is not a JSON object")
    headers = frame.headers
    event_type = headers.get("eventType", "")
    born = headers.get("eventBornTime", "")
    return {
        "EventType": event_type,
        "corpId": headers.get("eventCorpId", ""),
        **{k: v for k, v in data.items() if k not in _ENVELOPE_KEYS},
        "eventId": headers.get("eventId", ""),
        "eventType": event_type,
        "eventBornTime": int(born) if born.isdigit() else None,
    }


def robot_payload(frame: StreamFrame) -> dict[str, Any]:
    """The payload of a robot message: DingTalk's message JSON plus ``content``, the text stripped.

    ``sessionWebhook`` is kept: it is how a DAG answers in the conversation (valid until
    ``sessionWebhookExpiredTime``), and anyone who can read the asset event can post there until then.
    """
    from airflow_provider_dingtalk.stream.frames import StreamProtocolError

    data = frame.json()
    if not isinstance(data, dict):
        raise StreamProtocolError(f"robot message {frame.message_id!r}: data is not a JSON object")
    text = data.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    return {**data, "content": content.strip() if isinstance(content, str) else ""}


class _Recent:
    """The last ``size`` keys seen, for dropping DingTalk's duplicate pushes in bounded memory."""

    def __init__(self, size: int) -> None:
        self.size, self._keys = size, OrderedDict[str, None]()

    def add(self, key: str) -> bool:
        """``True`` if ``key`` is new."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


# -- one client per connection and kind, shared by the triggers of a triggerer ------------------


class _Hub:
    """Reads one Stream client and offers each message to every subscribed trigger; acks it once all
    are done with it, or leaves it un-acked (DingTalk redelivers) if one gave up half-way."""

    def __init__(self, key: tuple[Any, ...], make_client: Callable[[], Any]) -> None:
        self.key, self._make_client = key, make_client
        self.subscribers: set[asyncio.Queue[Any]] = set()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._pump(), name=f"dingtalk-stream-{self.key[0]}")

    async def _pump(self) -> None:
        try:
            client: DingTalkStreamClient = await self._make_client()
            async for message in client.messages():
                subscribers = list(self.subscribers)
                outcomes = [asyncio.get_running_loop().create_future() for _ in subscribers]
                for queue, outcome in zip(subscribers, outcomes, strict=True):
                    await queue.put((message, outcome))
                if all(await asyncio.gather(*outcomes)):
                    await message.ack()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # bad credentials, websockets missing: every trigger fails with it
            for queue in self.subscribers:
                queue.put_nowait((exc, None))


_HUBS: dict[tuple[Any, ...], _Hub] = {}


@contextlib.asynccontextmanager
async def _subscribe(
    key: tuple[Any, ...], make_client: Callable[[], Any]
) -> AsyncIterator[asyncio.Queue[Any]]:
    hub = _HUBS.get(key)
    if hub is None:
        hub = _HUBS[key] = _Hub(key, make_client)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    hub.subscribers.add(queue)
    hub.start()
    try:
        yield queue
    finally:
        hub.subscribers.discard(queue)
        while not queue.empty():  # offered but never looked at: not done, DingTalk redelivers
            _, outcome = queue.get_nowait()
            if outcome is not None and not outcome.done():
                outcome.set_result(False)
        if not hub.subscribers and _HUBS.get(key) is hub:
            del _HUBS[key]
            if hub.task is not None:
                hub.task.cancel()
                await asyncio.gather(hub.task, return_exceptions=True)


async def _connection_client(dingtalk_conn_id: str, **options: Any) -> DingTalkStreamClient:
    from airflow.sdk import BaseHook

    from airflow_provider_dingtalk.hooks.base import app_config
    from airflow_provider_dingtalk.stream.client import DingTalkStreamClient

    conn = await BaseHook.aget_connection(dingtalk_conn_id)
    return DingTalkStreamClient.from_app(app_config(dingtalk_conn_id, conn), **options)


async def consume_events(
    dingtalk_conn_id: str,
    on_event: Callable[[Mapping[str, Any]], None],
    *,
    keepalive_interval: float = 20.0,
    keepalive_timeout: float = 20.0,
) -> None:
    """Call ``on_event(payload)`` for every event of the connection's shared Stream client, until cancelled.

    For a consumer in the triggerer that only looks at events and hands nothing to Airflow (the
    approval poller's wake-ups, where GET stays the source of truth): it is done with an event once
    ``on_event`` returned, so the event is acked as soon as every Stream trigger of the connection is
    done with it as well, never earlier and never held back by this consumer. ``payload`` is that of
    :func:`stream_event`. Runs on the client the connection's :class:`DingTalkStreamEventTrigger` s
    use (whose keepalive settings win if one started it).

    :raises DingTalkAPIError: DingTalk refused the credentials or the subscription.
    :raises StreamDependencyError: ``websockets`` is not installed.
    """
    from airflow_provider_dingtalk.stream.frames import StreamProtocolError

    async def client() -> DingTalkStreamClient:
        return await _connection_client(
            dingtalk_conn_id,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            events=True,
        )

    async with _subscribe((dingtalk_conn_id, _EVENTS), client) as queue:
        while True:
            message, outcome = await queue.get()
            if outcome is None:
                raise message
            try:
                if message.frame.type == "EVENT":
                    on_event(stream_event(message.frame))
            except StreamProtocolError as exc:
                log.warning("DingTalk Stream: %s; not looked at", exc)
            finally:
                outcome.set_result(True)


class _StreamTrigger(BaseEventTrigger):
    """What both Stream triggers share: the connection, the hub, de-duplication, the ack rule."""

    _kind = ""

    def __init__(
        self,
        *,
        dingtalk_conn_id: str,
        keepalive_interval: float,
        keepalive_timeout: float,
        remember: int,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's signature is untyped
        self.dingtalk_conn_id = dingtalk_conn_id
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = keepalive_timeout
        self.remember = remember

    def _kwargs(self) -> dict[str, Any]:
        return {
            "dingtalk_conn_id": self.dingtalk_conn_id,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_timeout": self.keepalive_timeout,
            "remember": self.remember,
        }

    def _payload(self, message: StreamMessage) -> tuple[str, dict[str, Any]] | None:
        """``(dedup key, payload)`` if this trigger wants the message, else ``None``."""
        raise NotImplementedError

    def _client_options(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _client(self) -> DingTalkStreamClient:
        return await _connection_client(
            self.dingtalk_conn_id,
            keepalive_interval=self.keepalive_interval,
            keepalive_timeout=self.keepalive_timeout,
            **self._client_options(),
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_dingtalk.stream.frames import StreamProtocolError

        seen = _Recent(self.remember)
        key = (self.dingtalk_conn_id, self._kind)
        async with _subscribe(key, self._client) as queue:
            while True:
                message, outcome = await queue.get()
                if outcome is None:
                    raise message
                handed = False
                try:
                    try:
                        wanted = self._payload(message)
                    except StreamProtocolError as exc:
                        self.log.warning("DingTalk Stream: %s; dropped", exc)
                        wanted = None
                    if wanted is not None and not seen.add(wanted[0]):
                        self.log.info("DingTalk pushed %s again; already handed to Airflow", wanted[0])
                        wanted = None
                    if wanted is not None:
                        yield TriggerEvent(wanted[1])  # type: ignore[no-untyped-call]
                    handed = True  # the triggerer asked for the next event: this one is queued
                finally:
                    if not outcome.done():
                        outcome.set_result(handed)


class DingTalkStreamEventTrigger(_StreamTrigger):
    """One asset event per DingTalk event received over Stream mode.

    The app must have Stream mode chosen as its push method and the events ticked in the developer
    console (事件订阅); see the docs page "Events without a public URL".

    :param event_types: the ``EventType`` values to fire on, e.g. ``["bpms_instance_change"]``.
    :param filters: optional ``{field: value or [values]}`` on the business fields, e.g.
        ``{"processCode": "PROC-…", "type": ["finish", "terminate"]}``; all must match.
    :param dingtalk_conn_id: a ``dingtalk`` connection (AppKey/AppSecret; its ``api_host`` setting is used).
    :param keepalive_interval: seconds between WebSocket pings.
    :param keepalive_timeout: a pong later than this replaces the connection.
    :param remember: how many recent ``eventId`` values are kept to drop DingTalk's duplicate pushes.
    """

    _kind = _EVENTS

    def __init__(
        self,
        *,
        event_types: Sequence[str],
        filters: Mapping[str, str | Sequence[str]] | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        keepalive_interval: float = 20.0,
        keepalive_timeout: float = 20.0,
        remember: int = 10_000,
    ) -> None:
        from airflow_provider_dingtalk.exceptions import DingTalkValidationError

        if isinstance(event_types, str) or not event_types:
            raise DingTalkValidationError("event_types", 'give a list, e.g. ["bpms_instance_change"]')
        super().__init__(
            dingtalk_conn_id=dingtalk_conn_id,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            remember=remember,
        )
        self.event_types = list(event_types)
        self.filters = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"event_types": self.event_types, "filters": self.filters, **self._kwargs()}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _client_options(self) -> dict[str, Any]:
        return {"events": True}

    def _payload(self, message: StreamMessage) -> tuple[str, dict[str, Any]] | None:
        if message.frame.type != "EVENT" or message.frame.headers.get("eventType") not in self.event_types:
            return None
        event = stream_event(message.frame)
        if not _matches(event, self.filters):
            return None
        return str(event["eventId"] or message.frame.message_id), event


class DingTalkStreamRobotMessageTrigger(_StreamTrigger):
    """One asset event per message that @-mentions the app robot (ChatOps), received over Stream.

    Payload: DingTalk's robot message (``senderStaffId``, ``senderNick``, ``conversationId``,
    ``conversationType``, ``text``, ``sessionWebhook`` …) plus ``content``, the text stripped. Schedule
    on :data:`~airflow_provider_dingtalk.event_types.ROBOT_MESSAGE_ASSET_URI`.

    :param conversation_ids: only these conversations (``conversationId``); default all.
    :param dingtalk_conn_id: a ``dingtalk`` connection of the app whose robot it is.
    :param keepalive_interval: seconds between WebSocket pings.
    :param keepalive_timeout: a pong later than this replaces the connection.
    :param remember: how many recent ``msgId`` values are kept to drop duplicates.
    """

    _kind = "robot"

    def __init__(
        self,
        *,
        conversation_ids: Sequence[str] = (),
        dingtalk_conn_id: str = "dingtalk_default",
        keepalive_interval: float = 20.0,
        keepalive_timeout: float = 20.0,
        remember: int = 10_000,
    ) -> None:
        super().__init__(
            dingtalk_conn_id=dingtalk_conn_id,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            remember=remember,
        )
        self.conversation_ids = list(conversation_ids)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"conversation_ids": self.conversation_ids, **self._kwargs()}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _client_options(self) -> dict[str, Any]:
        from airflow_provider_dingtalk.stream.client import ROBOT_MESSAGE_TOPIC

        return {"events": False, "callback_topics": [ROBOT_MESSAGE_TOPIC]}

    def _payload(self, message: StreamMessage) -> tuple[str, dict[str, Any]] | None:
        if message.frame.type != "CALLBACK":
            return None
        payload = robot_payload(message.frame)
        if self.conversation_ids and payload.get("conversationId") not in self.conversation_ids:
            return None
        return str(payload.get("msgId") or message.frame.message_id), payload


def _matches(event: Mapping[str, Any], filters: Mapping[str, Iterable[str]]) -> bool:
    return all(str(event.get(name)) in set(values) for name, values in filters.items())
