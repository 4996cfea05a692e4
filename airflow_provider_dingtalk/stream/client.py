"""An asyncio client for DingTalk's Stream mode: events and robot messages over an outbound WebSocket.

Protocol: DingTalk's "Stream 模式协议说明" (github.com/open-dingtalk/developerpedia
``docs/learn/stream/protocol.md``) and the "Stream 模式" pages on open.dingtalk.com. ``POST
/v1.0/gateway/connections/open`` with AppKey/AppSecret gives an endpoint and a single-use ticket; the
socket then carries EVENT, CALLBACK and SYSTEM frames, each answered with an ack by ``messageId``.

Built on ``websockets``' asyncio client rather than the official ``dingtalk-stream`` SDK, which
reconnects after a fixed 10 s, logs errors and carries on, and (0.24.3) cannot parse SYSTEM frames at
all — ``SystemMessage.from_dict`` is indented into ``__init__``, so it never answers ``ping`` nor sees
``disconnect``. What this client does instead:

* reconnects with jittered exponential backoff up to a cap; stops on bad credentials (HTTP 401);
* keepalive: ``websockets`` pings every ``keepalive_interval`` and drops a socket whose pong is
  ``keepalive_timeout`` late, so a dead TCP connection is noticed and replaced;
* on ``disconnect`` opens the next connection at once and keeps reading the old one until DingTalk
  closes it, so nothing pushed in between is missed;
* answers ``ping`` as soon as it is read; keeps unknown headers and ignores unknown frame types;
* never acks by itself: the consumer calls :meth:`StreamMessage.ack` once it has handed the event on.

``websockets`` is in the ``stream`` extra (Airflow installs it anyway, through uvicorn's standard extra).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from airflow_provider_dingtalk._redact import Secret, install_redacting_filter, mask_secret, redact
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkError
from airflow_provider_dingtalk.stream.frames import (
    EVENT_LATER,
    EVENT_SUCCESS,
    StreamFrame,
    StreamProtocolError,
    ack_frame,
    parse_frame,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from airflow_provider_dingtalk.hooks.base import AppConfig

__all__ = [
    "OPEN_PATH",
    "ROBOT_MESSAGE_TOPIC",
    "Backoff",
    "DingTalkStreamClient",
    "StreamDependencyError",
    "StreamMessage",
    "StreamStats",
    "stream_available",
]

log = logging.getLogger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
ROBOT_MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"
_USER_AGENT = "airflow-provider-dingtalk-stream"


class StreamDependencyError(DingTalkError, ImportError):
    """``websockets`` is missing: the message names the extra that brings it."""


def _websockets_client() -> Any:
    try:
        from websockets.asyncio import client
    except ImportError:  # websockets < 13 has no asyncio.client either
        raise StreamDependencyError(
            "DingTalk Stream mode needs the websockets library (13 or newer): "
            "pip install 'airflow-provider-dingtalk[stream]'"
        ) from None
    return client


def stream_available() -> bool:
    """Whether this process can run Stream mode (``websockets`` 13+, the ``stream`` extra; Airflow
    installs it anyway)."""
    try:
        _websockets_client()
    except StreamDependencyError:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Wait before reconnect attempt ``n``: between half and all of ``min(cap, base * 2**n)``.

    The jitter keeps many triggerers that lost DingTalk at once from coming back in step; the lower
    half-bound keeps a flapping endpoint from being hammered.
    """

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling / 2 + float(rand()) * ceiling / 2


@dataclass
class StreamStats:
    """Counters a caller (or a benchmark) can read while the client runs."""

    connections: int = 0
    handovers: int = 0  # disconnect frames followed
    lost: int = 0  # connections that ended without a disconnect frame
    pings: int = 0
    frames: int = 0


class StreamMessage:
    """An EVENT or CALLBACK frame, answered on the socket it came from.

    An ack that can no longer be sent (the socket closed) is not an error: DingTalk pushes an
    un-acked event again, and the consumer drops the copy by ``eventId``.
    """

    def __init__(self, frame: StreamFrame, socket: ClientConnection) -> None:
        self.frame = frame
        self._socket = socket

    async def ack(self, response: Any = None) -> bool:
        """Done with it: ``SUCCESS`` for an event, ``{"response": response}`` for a callback.

        :return: whether the ack was sent.
        """
        data = EVENT_SUCCESS if self.frame.type == "EVENT" else json.dumps({"response": response})
        return await self._send(ack_frame(self.frame.message_id, data=data))

    async def later(self) -> bool:
        """Ask DingTalk to push this event again later (``LATER``)."""
        return await self._send(ack_frame(self.frame.message_id, data=EVENT_LATER))

    async def _send(self, text: str) -> bool:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._socket.send(text)
        except ConnectionClosed:
            log.info("DingTalk Stream: ack for %s not sent, the socket closed", self.frame.message_id)
            return False
        return True


class DingTalkStreamClient:
    """Receive DingTalk Stream frames; :meth:`messages` yields them and never ends on its own.

    :param app_key: the app's AppKey (Client ID).
    :param app_secret: its AppSecret.
    :param api_host: the v1.0 API host (the connection's ``api_host`` setting).
    :param proxy: an outbound proxy URL (the connection's ``proxy`` setting) for ``connections/open``
        and the WebSocket; ``None``: ``HTTPS_PROXY`` / ``NO_PROXY`` from the environment, as both
        ``requests`` and ``websockets`` (15 or newer) read them.
    :param events: subscribe every event the app ticked in the developer console (``EVENT *``).
    :param callback_topics: CALLBACK topics, e.g. :data:`ROBOT_MESSAGE_TOPIC`.
    :param keepalive_interval: seconds between WebSocket pings.
    :param keepalive_timeout: a pong later than this closes the socket and reconnects.
    :param open_timeout: seconds for ``connections/open`` and for the WebSocket handshake each.
    :param backoff: reconnect waits.
    :param stable_after: a connection that lived this long (or carried a frame) resets the backoff.
    :param queue_size: frames read but not yet taken by the consumer; a full queue stops reading.
    :param rand: ``random.random``-like, for the jitter.
    """

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: Secret,
        api_host: str = "https://api.dingtalk.com",
        proxy: str | None = None,
        events: bool = True,
        callback_topics: Sequence[str] = (),
        keepalive_interval: float = 20.0,
        keepalive_timeout: float = 20.0,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        stable_after: float = 30.0,
        queue_size: int = 1000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not events and not callback_topics:
            raise ValueError("subscribe events, callback topics, or both")
        self.app_key, self._secret, self.api_host = app_key, app_secret, api_host.rstrip("/")
        self.proxy = proxy
        self.events, self.callback_topics = events, tuple(callback_topics)
        self.keepalive_interval, self.keepalive_timeout = keepalive_interval, keepalive_timeout
        self.open_timeout, self.backoff, self.stable_after = open_timeout, backoff or Backoff(), stable_after
        self.queue_size, self._rand = queue_size, rand
        self.stats = StreamStats()

    @classmethod
    def from_app(cls, app: AppConfig, **kwargs: Any) -> DingTalkStreamClient:
        """A client for the app of a ``dingtalk`` connection (``DingTalkBaseHook.app``)."""
        return cls(
            app_key=app.app_key, app_secret=app.app_secret, api_host=app.v1_host(), proxy=app.proxy, **kwargs
        )

    async def messages(self) -> AsyncIterator[StreamMessage]:
        """EVENT and CALLBACK frames, across reconnects, until cancelled.

        :raises DingTalkAPIError: DingTalk refused the credentials or the subscription (not retried).
        :raises StreamDependencyError: ``websockets`` is not installed.
        """
        _websockets_client()
        queue: asyncio.Queue[StreamMessage | BaseException] = asyncio.Queue(self.queue_size)
        supervisor = asyncio.create_task(self._supervise(queue), name="dingtalk-stream")
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)

    # -- connections ---------------------------------------------------------------------------

    async def _supervise(self, queue: asyncio.Queue[StreamMessage | BaseException]) -> None:
        loop = asyncio.get_running_loop()
        readers: set[asyncio.Task[str]] = set()
        attempt = 0
        try:
            while True:
                try:
                    socket = await self._connect()
                except DingTalkAPIError as exc:
                    if (
                        exc.http_status is not None
                        and 400 <= exc.http_status < 500
                        and exc.http_status != 429
                    ):
                        await queue.put(exc)  # wrong AppKey/AppSecret or subscription: retrying cannot help
                        return
                    attempt = await self._wait(attempt, f"connections/open failed: {exc}")
                    continue
                except Exception as exc:  # network, handshake refused, timeout: all worth another try
                    attempt = await self._wait(attempt, f"could not connect: {type(exc).__name__}: {exc}")
                    continue
                self.stats.connections += 1
                started, handover = loop.time(), asyncio.Event()
                reader = asyncio.create_task(self._read(socket, queue, handover))
                readers.add(reader)
                reader.add_done_callback(readers.discard)
                waiter = asyncio.create_task(handover.wait())
                await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if handover.is_set():
                    self.stats.handovers += 1
                    log.info("DingTalk Stream asked to reconnect; opening the next connection first")
                    attempt = 0
                    continue
                self.stats.lost += 1
                if loop.time() - started >= self.stable_after or reader.result() == "frames":
                    attempt = 0
                attempt = await self._wait(attempt, "connection lost without a disconnect frame")
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _wait(self, attempt: int, why: str) -> int:
        delay = self.backoff.delay(attempt, self._rand)
        log.warning(
            "DingTalk Stream: %s; reconnecting in %.1f s", redact(why, [self._secret.reveal()]), delay
        )
        await asyncio.sleep(delay)
        return attempt + 1

    async def _connect(self) -> ClientConnection:
        endpoint, ticket = await asyncio.to_thread(self._open)
        client = _websockets_client()
        # The single-use ticket is a credential for 90 s: websockets logs the request line at DEBUG.
        install_redacting_filter("websockets.client")
        mask_secret(ticket)
        # Without a connection proxy, websockets 15+ reads the environment's itself (proxy=True).
        proxy = {"proxy": self.proxy} if self.proxy else {}
        if proxy and "proxy" not in inspect.signature(client.connect).parameters:
            raise StreamDependencyError(
                "A proxy for DingTalk Stream mode needs websockets 15 or newer: "
                "pip install 'airflow-provider-dingtalk[stream]'"
            )
        socket: ClientConnection = await client.connect(
            f"{endpoint}?ticket={quote_plus(ticket)}",
            **proxy,
            open_timeout=self.open_timeout,
            ping_interval=self.keepalive_interval,
            ping_timeout=self.keepalive_timeout,
            close_timeout=self.keepalive_timeout,  # a peer that stopped answering will not close either
            user_agent_header=_USER_AGENT,
            max_size=4 * 1024 * 1024,
        )
        return socket

    def _open(self) -> tuple[str, str]:
        """``connections/open`` (blocking; run in a thread): the endpoint and a ticket."""
        from airflow_provider_dingtalk.http import api_result, http_send, new_session

        subscriptions = [{"type": "EVENT", "topic": "*"}] if self.events else []
        subscriptions += [{"type": "CALLBACK", "topic": t} for t in self.callback_topics]
        body = {
            "clientId": self.app_key,
            "clientSecret": self._secret.reveal(),
            "subscriptions": subscriptions,
            "ua": _USER_AGENT,
        }
        with new_session(hosts=[self.api_host], proxy=self.proxy) as session:
            resp = http_send(
                session,
                "POST",
                self.api_host + OPEN_PATH,
                json=body,
                headers={"Accept": "application/json"},
                timeout=(self.open_timeout, self.open_timeout),
                secrets=[self._secret.reveal()],
            )
        answer = api_result(resp, api=OPEN_PATH)
        endpoint, ticket = answer.get("endpoint"), answer.get("ticket")
        if not (isinstance(endpoint, str) and endpoint and isinstance(ticket, str) and ticket):
            raise DingTalkAPIError(errmsg="answer lacks endpoint or ticket", api=OPEN_PATH)
        return endpoint, ticket

    async def _read(
        self,
        socket: ClientConnection,
        queue: asyncio.Queue[StreamMessage | BaseException],
        handover: asyncio.Event,
    ) -> str:
        """Read one socket until it closes; ``"frames"`` if it carried any EVENT or CALLBACK."""
        from websockets.exceptions import ConnectionClosed

        carried = False
        try:
            async for raw in socket:
                try:
                    frame = parse_frame(raw)
                except StreamProtocolError as exc:
                    log.warning("DingTalk Stream: %s; ignored", exc)
                    continue
                self.stats.frames += 1
                if frame.type == "SYSTEM":
                    await self._system(socket, frame, handover)
                elif frame.type in ("EVENT", "CALLBACK"):
                    carried = True
                    await queue.put(StreamMessage(frame, socket))
                else:
                    log.warning("DingTalk Stream: unknown frame type %r ignored", frame.type)
        except ConnectionClosed as exc:
            log.info("DingTalk Stream connection closed: %s", exc)
        finally:
            await socket.close()
        return "frames" if carried else "quiet"

    async def _system(self, socket: ClientConnection, frame: StreamFrame, handover: asyncio.Event) -> None:
        if frame.topic == "ping":
            self.stats.pings += 1
            await socket.send(ack_frame(frame.message_id, data=frame.data))  # echo the opaque
        elif frame.topic == "disconnect":
            # DingTalk closes this socket about 10 s later; the next one opens now.
            handover.set()
        else:  # CONNECTED, REGISTERED, KEEPALIVE and whatever comes: ack and ignore, as the SDKs do
            log.debug("DingTalk Stream: SYSTEM %r acked and ignored", frame.topic)
            if frame.message_id:
                await socket.send(ack_frame(frame.message_id, data=frame.data))
