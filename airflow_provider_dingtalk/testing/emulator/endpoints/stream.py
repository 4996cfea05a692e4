"""Stream mode (DingTalk's outbound WebSocket): ``connections/open``, the ``/connect`` socket, pushes, acks.

What DingTalk documents ("Stream 模式协议说明", open-dingtalk developerpedia
``docs/learn/stream/protocol.md``) and the emulator does:

* ``POST /v1.0/gateway/connections/open`` with ``clientId``/``clientSecret`` (AppKey/AppSecret) and
  ``subscriptions``: a wrong pair is HTTP 401 ``authFailed``; otherwise an ``endpoint`` and a ticket
  valid for 90 s and one connection.
* ``GET /connect?ticket=``: an unknown, used or expired ticket is refused before the upgrade (HTTP 401).
* Frames carry ``data`` as a JSON *string* and only string header values; each push has a fresh
  ``messageId``. Events go to one of the app's connections that subscribed ``EVENT *``, chosen at random,
  robot messages to one that subscribed their CALLBACK topic.
* An event is done when an ack with its ``messageId`` says code 200 and ``status`` ``SUCCESS`` (or no
  status: the official Python SDK sends none). No ack, ``LATER`` or another code: the event is pushed
  again after :attr:`Gateway.redelivery_timeout`, same ``eventId``, new ``messageId``. DingTalk does not
  publish its timeout; tests set a short one. Robot messages are not pushed again.
* ``ping`` (echo expected) and ``disconnect`` (frame, then the socket closes ``disconnect_grace`` later)
  are sent on request from the control API, as are a TCP drop without a frame and a frozen socket
  (the server stops reading: the client's keepalive must notice).

The socket is served as plain ASGI (``app.py`` hands it every ``websocket`` scope) rather than through
FastAPI's router: the drop and freeze faults need uvicorn's transport, which only the raw ``send`` reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request

from airflow_provider_dingtalk.testing.emulator.http import V1Error, read_v1_json, state_of
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

OPEN_PATH = "/v1.0/gateway/connections/open"
CONNECT_PATH = "/connect"
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
TICKET_TTL = 90.0
_TICK = 0.05  # how often due redeliveries are looked for; a push wakes the scheduler at once
_SEND_TIMEOUT = 2.0

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(kw_only=True)
class Ticket:
    app_key: str
    events: bool
    callbacks: frozenset[str]
    expires_at: float


@dataclass(kw_only=True)
class StreamConnection:
    """One open socket of an app."""

    id: str
    app_key: str
    events: bool
    callbacks: frozenset[str]
    send: Send
    transport: Any
    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = True
    disconnecting: bool = False
    close_task: asyncio.Future[None] | None = None  # held so the loop does not drop it half-way

    async def send_frame(self, frame: dict[str, Any]) -> bool:
        async with self.lock:
            if not self.open:
                return False
            try:
                await self.send({"type": "websocket.send", "text": json.dumps(frame, ensure_ascii=False)})
            except Exception:  # the client went away between our check and the write
                self.open = False
                return False
            return True


@dataclass(kw_only=True)
class Push:
    """An EVENT or CALLBACK waiting for its ack (or for a connection to take it)."""

    app_key: str
    type: str
    topic: str
    headers: dict[str, str]
    data: str
    message_id: str = ""
    due: float = 0.0
    deliveries: int = 0
    connection: str | None = None  # only this connection takes it (a test pins a click), while open


@dataclass(kw_only=True)
class AckRecord:
    """An ack as the gateway received it (``data`` parsed when it is JSON)."""

    connection: str
    message_id: str
    code: Any
    message: Any
    data: Any
    headers: dict[str, Any]


@dataclass
class Gateway:
    """The gateway's memory, one per emulator (in ``EmulatorState.store``)."""

    redelivery_timeout: float = 5.0
    disconnect_grace: float = 10.0
    tickets: dict[str, Ticket] = field(default_factory=dict)
    connections: dict[str, StreamConnection] = field(default_factory=dict)
    waiting: dict[str, Push] = field(default_factory=dict)  # by eventId / msgId, until acked
    # messageId of the latest delivery → its key in waiting: an ack is found without a scan, which at
    # tens of thousands of waiting events kept the loop from answering pings in time.
    delivery: dict[str, str] = field(default_factory=dict)
    acks: list[AckRecord] = field(default_factory=list)
    pings: dict[str, str] = field(default_factory=dict)  # messageId → opaque sent
    echoes: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0  # frames pushed, redeliveries included
    loop: asyncio.AbstractEventLoop | None = None
    wake: asyncio.Event | None = None
    scheduler: asyncio.Task[None] | None = None
    sending: set[asyncio.Task[None]] = field(default_factory=set)
    card_replies: dict[str, Any] = field(default_factory=dict)  # click key → the ack's "response"


def gateway(state: EmulatorState) -> Gateway:
    return state.store("stream", Gateway)


# -- connections/open ---------------------------------------------------------------------------


@router.post(OPEN_PATH)
async def open_connection(request: Request) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    app = state.apps.get(str(body.get("clientId") or ""))
    if app is None or body.get("clientSecret") != app.app_secret:
        raise V1Error(401, "authFailed", "鉴权失败")
    subs = body.get("subscriptions")
    if not isinstance(subs, list) or not subs:
        raise V1Error(400, "invalidParameter", "subscriptions is mandatory")
    events, callbacks = False, set()
    for sub in subs:
        kind = sub.get("type") if isinstance(sub, dict) else None
        topic = sub.get("topic") if isinstance(sub, dict) else None
        if kind not in ("EVENT", "CALLBACK", "SYSTEM") or not isinstance(topic, str) or not topic:
            raise V1Error(400, "invalidParameter", f"bad subscription {sub!r}")
        if kind == "EVENT":
            if topic != "*":  # per-event topics cannot be subscribed: "仅支持星号"
                raise V1Error(400, "invalidParameter", "EVENT topic only supports *")
            events = True
        elif kind == "CALLBACK":
            callbacks.add(topic)
    ticket = str(uuid.UUID(state.random_hex(32)))
    state.add_secret(ticket)
    gw = gateway(state)
    with state.lock:
        gw.tickets[ticket] = Ticket(
            app_key=app.app_key,
            events=events,
            callbacks=frozenset(callbacks),
            expires_at=state.clock.now() + TICKET_TTL,
        )
    return {"endpoint": f"ws://{request.url.netloc}{CONNECT_PATH}", "ticket": ticket}


# -- the socket ---------------------------------------------------------------------------------


async def serve_socket(state: EmulatorState, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI handler for ``websocket`` scopes: the ``/connect`` endpoint."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    gw = gateway(state)
    with state.lock:
        ticket = gw.tickets.pop((query.get("ticket") or [""])[0], None)  # single use: gone once tried
    if scope["path"] != CONNECT_PATH or ticket is None or ticket.expires_at < state.clock.now():
        await _refuse(scope, send, 401 if scope["path"] == CONNECT_PATH else 404)
        return
    await send({"type": "websocket.accept"})
    loop = asyncio.get_running_loop()
    conn = StreamConnection(
        id=state.random_hex(16),
        app_key=ticket.app_key,
        events=ticket.events,
        callbacks=ticket.callbacks,
        send=send,
        transport=_transport(send),
        loop=loop,
    )
    _offer_card_clicks(state)
    with state.lock:
        gw.connections[conn.id] = conn
        if gw.wake is None or gw.scheduler is None or gw.scheduler.done():
            gw.loop, gw.wake = loop, asyncio.Event()
            gw.scheduler = loop.create_task(_schedule(state, gw))
        wake = gw.wake
    wake.set()  # events that waited for a connection go now
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text:
                _on_client_frame(state, gw, conn, text)
    finally:
        conn.open = False
        with state.lock:
            gw.connections.pop(conn.id, None)


def _offer_card_clicks(state: EmulatorState) -> None:
    """Card clicks on ``STREAM`` cards go down the app's connections (``interactive_card.Cards.stream``)."""
    from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import cards

    store = cards(state)
    if store.stream is None:
        store.stream = lambda app, topic, payload, connection: send_card_click(
            state, app, topic, payload, connection=connection
        )


async def _refuse(scope: dict[str, Any], send: Send, status: int) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"code": "invalidTicket", "message": "ticket is invalid or used"}).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # the server cannot answer with a status: a close before accept is its 403
        await send({"type": "websocket.close", "code": 1008})


def _transport(send: Send) -> Any:
    """uvicorn's transport for this socket: ``send`` is a bound method of its protocol object."""
    return getattr(getattr(send, "__self__", None), "transport", None)


def _on_client_frame(state: EmulatorState, gw: Gateway, conn: StreamConnection, text: str) -> None:
    try:
        frame = json.loads(text)
        headers = frame.get("headers") or {}
        message_id = str(headers.get("messageId") or "")
    except (ValueError, AttributeError):
        return  # DingTalk ignores what it cannot read; the event will be redelivered
    raw_data = frame.get("data")
    try:
        data = json.loads(raw_data) if isinstance(raw_data, str) else raw_data
    except ValueError:
        data = raw_data
    with state.lock:
        if message_id in gw.pings:
            gw.echoes.append({"connection": conn.id, "sent": gw.pings.pop(message_id), "data": data})
            return
        gw.acks.append(
            AckRecord(
                connection=conn.id,
                message_id=message_id,
                code=frame.get("code"),
                message=frame.get("message"),
                data=data,
                headers=dict(headers),
            )
        )
        key = gw.delivery.pop(message_id, None)
        if key is None or key not in gw.waiting or gw.waiting[key].message_id != message_id:
            return  # unknown, or an ack of an older delivery than the one pending
        status = data.get("status") if isinstance(data, dict) else None
        if gw.waiting[key].topic == CARD_TOPIC:
            if frame.get("code") == 200:  # the card update is the ack's {"response": ...}
                del gw.waiting[key]
                gw.card_replies[key] = data.get("response") if isinstance(data, dict) else None
            else:
                gw.waiting[key].due = state.clock.now() + gw.redelivery_timeout
        elif frame.get("code") == 200 and status in (None, "SUCCESS"):
            del gw.waiting[key]
        else:  # LATER, or the client failed: again after the timeout
            gw.waiting[key].due = state.clock.now() + gw.redelivery_timeout


async def _schedule(state: EmulatorState, gw: Gateway) -> None:
    """Push what is due to one of the app's connections; ends with the last connection."""
    assert gw.wake is not None
    while gw.connections:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gw.wake.wait(), _TICK)
        gw.wake.clear()
        now = state.clock.now()
        sends: list[tuple[StreamConnection, dict[str, Any]]] = []
        with state.lock:
            for key, push in list(gw.waiting.items()):
                if push.due > now:
                    continue
                targets = [c for c in gw.connections.values() if _takes(c, push)]
                pinned = [c for c in targets if c.id == push.connection]
                targets = pinned or targets
                if not targets:
                    continue  # kept until a connection comes
                conn = targets[int(state.random_hex(8), 16) % len(targets)]
                gw.delivery.pop(push.message_id, None)
                push.message_id = _message_id(state)
                if push.type != "CALLBACK" or push.topic == CARD_TOPIC:  # both wait for their ack
                    gw.delivery[push.message_id] = key
                push.deliveries += 1
                push.due = now + gw.redelivery_timeout
                if push.type == "CALLBACK" and push.topic != CARD_TOPIC:  # robot messages: fire-and-forget
                    del gw.waiting[key]
                sends.append((conn, _frame(push, now)))
        for conn, frame in sends:  # each on its own: a stuck socket must not hold up the others
            task = asyncio.create_task(_deliver(gw, conn, frame))
            gw.sending.add(task)
            task.add_done_callback(gw.sending.discard)


async def _deliver(gw: Gateway, conn: StreamConnection, frame: dict[str, Any]) -> None:
    try:
        sent = await asyncio.wait_for(conn.send_frame(frame), _SEND_TIMEOUT)
    except TimeoutError:  # a peer that stopped reading: give up on it, as DingTalk's keepalive would
        conn.open = False
        if conn.transport is not None:
            conn.transport.abort()
        return
    if sent:
        gw.delivered += 1


def _takes(conn: StreamConnection, push: Push) -> bool:
    if not conn.open or conn.disconnecting or conn.app_key != push.app_key:
        return False
    return conn.events if push.type == "EVENT" else push.topic in conn.callbacks


def _message_id(state: EmulatorState) -> str:
    return f"{state.random_hex(8)}_{state.random_hex(3)}_{state.random_hex(11)}_{state.random_hex(4)}"


def _frame(push: Push, now: float) -> dict[str, Any]:
    headers = {
        "topic": push.topic,
        "messageId": push.message_id,
        "contentType": "application/json",
        "time": str(int(now * 1000)),
        **push.headers,
    }
    return {"specVersion": "1.0", "type": push.type, "headers": headers, "data": push.data}


# -- pushing (from tests, the demo and the control API; any thread) ------------------------------


def push_event(state: EmulatorState, app: EmulatedApp, event: dict[str, Any]) -> str:
    """Queue ``event`` (``{"EventType": ..., business fields}``) for the app's Stream connections.

    The metadata becomes frame headers and the business fields the ``data`` string, as DingTalk's
    Stream push does; ``eventId`` is taken from the event or made up.

    :return: the ``eventId``.
    """
    event_type = str(event.get("EventType") or event.get("eventType") or "")
    if not event_type:
        raise ValueError("a Stream event needs an EventType")
    event_id = str(event.get("eventId") or state.random_hex(32))
    meta = {"EventType", "eventType", "eventId", "CorpId", "corpId", "EventTime", "eventBornTime"}
    business = {k: v for k, v in event.items() if k not in meta}
    born = event.get("eventBornTime") or int(state.clock.now() * 1000)
    headers = {
        "eventType": event_type,
        "eventId": event_id,
        "eventCorpId": app.corp_id,
        "eventBornTime": str(born),
        "eventUnifiedAppId": app.app_key,
    }
    data = json.dumps(business, ensure_ascii=False)
    _queue(state, event_id, Push(app_key=app.app_key, type="EVENT", topic="*", headers=headers, data=data))
    return event_id


def push_event_if_connected(state: EmulatorState, app: EmulatedApp, event: dict[str, Any]) -> str | None:
    """:func:`push_event` if one of the app's open connections subscribed ``EVENT *``, else nothing.

    What the emulator's own APIs use for the events they cause (an approval decided): an app in Stream
    mode gets them down its socket, and tests that open no Stream connection see no queued pushes.

    :return: the ``eventId``, or ``None`` when no connection takes events.
    """
    with state.lock:
        connected = any(
            c.open and c.events and c.app_key == app.app_key for c in gateway(state).connections.values()
        )
    return push_event(state, app, event) if connected else None


def push_robot_message(
    state: EmulatorState, app: EmulatedApp, message: dict[str, Any], *, base_url: str | None = None
) -> str:
    """Queue a robot message (the JSON DingTalk puts in the CALLBACK's ``data``); returns its ``msgId``.

    With ``base_url`` (the emulator's), a message without a ``sessionWebhook`` gets one that answers
    in its conversation for 90 minutes, as DingTalk's do.
    """
    from airflow_provider_dingtalk.testing.emulator.endpoints.session_webhook import open_session

    msg_id = str(message.get("msgId") or "msg" + state.random_hex(20))
    body = {**message, "msgId": msg_id}
    if base_url is not None and "sessionWebhook" not in message:
        body.update(open_session(state, base_url, message))
    headers = {"appId": app.app_key}
    data = json.dumps(body, ensure_ascii=False)
    _queue(
        state,
        msg_id,
        Push(app_key=app.app_key, type="CALLBACK", topic=ROBOT_TOPIC, headers=headers, data=data),
    )
    return msg_id


def send_card_click(
    state: EmulatorState,
    app: EmulatedApp,
    topic: str,
    payload: dict[str, Any],
    *,
    connection: str | None = None,
    wait: float = 2.0,
) -> dict[str, Any] | None:
    """A card click as a CALLBACK frame; blocks until the ack's ``response`` (the card update).

    ``None`` when no ack came within ``wait`` seconds (DingTalk's 2 s): the card stays as it was. An
    un-acked click stays queued and is pushed again after :attr:`Gateway.redelivery_timeout`, to any
    connection that subscribed the topic, like an event: DingTalk does not say whether it redelivers
    card callbacks, and the app must cope either way (a late answer is applied, its reply dropped).

    :param connection: push to this connection only while it is open (a test steering clicks).
    """
    key = "card-" + state.random_hex(16)
    push = Push(
        app_key=app.app_key,
        type="CALLBACK",
        topic=topic,
        headers={"appId": app.app_key},
        data=json.dumps(payload, ensure_ascii=False),
        connection=connection,
    )
    _queue(state, key, push)
    gw = gateway(state)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with state.lock:
            if key in gw.card_replies:
                reply = gw.card_replies.pop(key)
                return reply if isinstance(reply, dict) else None
        time.sleep(0.005)
    return None


def _queue(state: EmulatorState, key: str, push: Push) -> None:
    gw = gateway(state)
    with state.lock:
        gw.waiting[key] = push
    _wake(gw)


def _wake(gw: Gateway) -> None:
    loop, wake = gw.loop, gw.wake
    if loop is not None and wake is not None and not loop.is_closed():
        loop.call_soon_threadsafe(wake.set)


def _on_loop(gw: Gateway, work: Callable[[], Awaitable[Any]], *, timeout: float = 10.0) -> Any:
    """Run ``work()`` on the server's event loop from another thread and wait for it."""
    if gw.loop is None or gw.loop.is_closed():
        return None
    if _running_loop() is gw.loop:
        raise RuntimeError("call the Stream controls from another thread than the emulator's")
    return asyncio.run_coroutine_threadsafe(work(), gw.loop).result(timeout)  # type: ignore[arg-type]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _targets(state: EmulatorState, app_key: str | None, connection: str | None) -> list[StreamConnection]:
    with state.lock:
        return [
            c
            for c in gateway(state).connections.values()
            if c.open and (app_key is None or c.app_key == app_key) and connection in (None, c.id)
        ]


async def _disconnect(state: EmulatorState, conns: list[StreamConnection], grace: float) -> None:
    for conn in conns:
        conn.disconnecting = True  # no new pushes go there
        frame = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "contentType": "application/json",
                "messageId": _message_id(state),
                "time": str(int(state.clock.now() * 1000)),
                "topic": "disconnect",
            },
            "data": json.dumps({"reason": "persistent connection is timeout"}),
        }
        await conn.send_frame(frame)
        asyncio.get_running_loop().call_later(grace, _close_later, conn)


def _close_later(conn: StreamConnection) -> None:
    conn.close_task = asyncio.ensure_future(_close(conn))


async def _close(conn: StreamConnection) -> None:
    async with conn.lock:
        if conn.open:
            conn.open = False
            with contextlib.suppress(Exception):  # already gone: nothing left to close
                await conn.send({"type": "websocket.close", "code": 1000})


def disconnect(
    state: EmulatorState,
    *,
    app_key: str | None = None,
    connection: str | None = None,
    grace: float | None = None,
) -> int:
    """Send ``disconnect`` to the (matching) open connections and close each ``grace`` s later."""
    gw = gateway(state)
    conns = _targets(state, app_key, connection)
    wait = gw.disconnect_grace if grace is None else grace
    _on_loop(gw, lambda: _disconnect(state, conns, wait))
    return len(conns)


async def _drop(conns: list[StreamConnection]) -> None:
    for conn in conns:
        conn.open = False
        if conn.transport is not None:
            conn.transport.abort()


def drop(state: EmulatorState, *, app_key: str | None = None, connection: str | None = None) -> int:
    """Close the TCP connection(s) without a WebSocket close frame, as a broken network does."""
    conns = _targets(state, app_key, connection)
    _on_loop(gateway(state), lambda: _drop(conns))
    return len(conns)


def freeze(state: EmulatorState, *, app_key: str | None = None, connection: str | None = None) -> int:
    """Stop reading the socket(s): nothing the client sends is seen, its pings get no pong."""
    conns = _targets(state, app_key, connection)

    async def work() -> None:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.pause_reading()

    _on_loop(gateway(state), work)
    return len(conns)


def ping(state: EmulatorState, *, app_key: str | None = None, connection: str | None = None) -> list[str]:
    """Send a SYSTEM ``ping`` with a random ``opaque`` to each (matching) connection; returns the opaques."""
    gw = gateway(state)
    conns = _targets(state, app_key, connection)
    sent: list[str] = []

    async def work() -> None:
        for conn in conns:
            message_id, opaque = _message_id(state), f"{state.random_hex(3)}-{state.random_hex(4)}"
            with state.lock:
                gw.pings[message_id] = opaque
            frame = {
                "specVersion": "1.0",
                "type": "SYSTEM",
                "headers": {
                    "topic": "ping",
                    "messageId": message_id,
                    "contentType": "application/json",
                    "time": str(int(state.clock.now() * 1000)),
                },
                "data": json.dumps({"opaque": opaque}),
            }
            if await conn.send_frame(frame):
                sent.append(opaque)

    _on_loop(gw, work)
    return sent


def snapshot(state: EmulatorState) -> dict[str, Any]:
    """What the gateway holds, JSON-ready (for the control API and assertions)."""
    gw = gateway(state)
    with state.lock:
        return {
            "connections": [
                {
                    "id": c.id,
                    "app_key": c.app_key,
                    "events": c.events,
                    "callbacks": sorted(c.callbacks),
                    "disconnecting": c.disconnecting,
                }
                for c in gw.connections.values()
                if c.open
            ],
            "waiting": len(gw.waiting),
            "delivered": gw.delivered,
            "acks": [asdict(a) for a in gw.acks],
            "echoes": list(gw.echoes),
            "redelivery_timeout": gw.redelivery_timeout,
            "disconnect_grace": gw.disconnect_grace,
        }


def wait_for_connections(state: EmulatorState, count: int = 1, *, timeout: float = 10.0) -> None:
    """Block until ``count`` connections are open (the client under test has connected)."""
    deadline = time.monotonic() + timeout
    while len(_targets(state, None, None)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} Stream connection(s) after {timeout} s")
        time.sleep(0.01)


# -- control API --------------------------------------------------------------------------------


def _app_of(request: Request, body: dict[str, Any]) -> EmulatedApp:
    state = state_of(request)
    key = body.get("app_key")
    app = state.apps.get(key) if key else next(iter(state.apps.values()))
    if app is None:
        raise HTTPException(404, f"no app {key!r}")
    return app


async def _control_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = json.loads(raw) if raw else {}
    if not isinstance(body, dict):
        raise HTTPException(422, "a JSON object")
    return body


@router.get("/_emulator/stream")
async def control_state(request: Request) -> dict[str, Any]:
    return snapshot(state_of(request))


@router.post("/_emulator/stream/settings")
async def control_settings(request: Request) -> dict[str, Any]:
    body = await _control_body(request)
    gw = gateway(state_of(request))
    for name in ("redelivery_timeout", "disconnect_grace"):
        if name in body:
            setattr(gw, name, float(body[name]))
    return {"redelivery_timeout": gw.redelivery_timeout, "disconnect_grace": gw.disconnect_grace}


@router.post("/_emulator/stream/events")
async def control_push(request: Request) -> dict[str, str]:
    body = await _control_body(request)
    event = body.get("event")
    if not isinstance(event, dict):
        raise HTTPException(422, 'give {"event": {"EventType": ..., ...}}')
    try:
        return {"eventId": push_event(state_of(request), _app_of(request, body), event)}
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/_emulator/stream/{action}")
async def control_action(request: Request, action: str) -> dict[str, Any]:
    body = await _control_body(request)
    state = state_of(request)
    where = {"app_key": body.get("app_key"), "connection": body.get("connection")}
    conns = _targets(state, where["app_key"], where["connection"])
    if action == "disconnect":
        grace = float(body.get("grace", gateway(state).disconnect_grace))
        await _disconnect(state, conns, grace)
    elif action == "drop":
        await _drop(conns)
    else:
        raise HTTPException(404, f"unknown Stream action {action!r}: disconnect, drop")
    return {"connections": len(conns)}


class StreamControls:
    """``DingTalkEmulator.stream``: steer the Stream gateway from a test, a benchmark or the demo.

    :param state: the emulator's state.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    @property
    def redelivery_timeout(self) -> float:
        """Seconds before an un-acked (or ``LATER``) event is pushed again."""
        return gateway(self._state).redelivery_timeout

    @redelivery_timeout.setter
    def redelivery_timeout(self, seconds: float) -> None:
        gateway(self._state).redelivery_timeout = seconds

    @property
    def disconnect_grace(self) -> float:
        """Seconds between the ``disconnect`` frame and the close (DingTalk: about 10)."""
        return gateway(self._state).disconnect_grace

    @disconnect_grace.setter
    def disconnect_grace(self, seconds: float) -> None:
        gateway(self._state).disconnect_grace = seconds

    def push_robot_message(
        self, app: EmulatedApp, message: dict[str, Any], *, base_url: str | None = None
    ) -> str:
        return push_robot_message(self._state, app, message, base_url=base_url)

    def disconnect(self, *, connection: str | None = None, grace: float | None = None) -> int:
        return disconnect(self._state, connection=connection, grace=grace)

    def drop(self, *, connection: str | None = None) -> int:
        return drop(self._state, connection=connection)

    def freeze(self, *, connection: str | None = None) -> int:
        return freeze(self._state, connection=connection)

    def ping(self, *, connection: str | None = None) -> list[str]:
        return ping(self._state, connection=connection)

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self._state)

    def acks(self) -> list[AckRecord]:
        with self._state.lock:
            return list(gateway(self._state).acks)

    def waiting(self) -> int:
        """Events not acked yet (robot messages until pushed once)."""
        with self._state.lock:
            return len(gateway(self._state).waiting)

    def wait_for_connections(self, count: int = 1, *, timeout: float = 10.0) -> None:
        wait_for_connections(self._state, count, timeout=timeout)

    def wait_until_acked(self, *, timeout: float = 10.0) -> None:
        """Block until every pushed event has been acked."""
        deadline = time.monotonic() + timeout
        while self.waiting():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.waiting()} Stream event(s) still un-acked after {timeout} s")
            time.sleep(0.01)
