"""Airflow plugin: the DingTalk event receiver on the API server, at ``<api base>/dingtalk/events``,
and the interactive cards' HTTP callback at ``<api base>/dingtalk/cards/callback``.

Configured from the ``dingtalkcallback`` connection named by ``[dingtalk] callback_conn_id``
(default ``dingtalk_callback_default``), read on the first request, so the API server starts even
before the connection exists (requests are then answered 503), and read again every minute and
after a failed signature check, so a rotated token or aes_key is picked up without a restart.
``[dingtalk] receiver_enabled = False`` removes the endpoint. Asset events are written with
:class:`~.sinks.DatabaseAssetSink`, and handled events are remembered in the provider's private
state folder, or in Redis with ``[dingtalk] state_backend = redis`` (several API servers behind a load
balancer then see each other's events).

The card callback answers human-in-the-loop tasks (:mod:`.card_callback`); it reads the
``dingtalk`` connection named by ``[dingtalk] card_conn_id`` (default ``dingtalk_default``) for the
DingTalk → Airflow user map (extra ``hitl_users``) and the route's ``card_callback_api_secret``,
again at most every ``_CARD_CONFIG_TTL`` seconds, and writes answers to the metadata DB. Clicks on
cards sent with ``callback_type="STREAM"`` (the default) come over a Stream connection that each API
server process holds (:mod:`.card_stream`) from its start to its shutdown: a root middleware sees the
API server's lifespan events, which mounted apps do not get on every Airflow 3 version. It connects
only while the connection maps DingTalk users to Airflow users (``hitl_users``; nobody may answer
otherwise); ``[dingtalk] card_stream_enabled = False`` turns it off.

Registered as an ``airflow.plugins`` entry point, which Airflow loads on every install; plugins
declared in provider info load only with ``[core] lazy_discover_providers = False`` (see "Plugins" in
Airflow's documentation). Plugins load in every Airflow process, so FastAPI and the receiver load only
on the first request.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin

__all__ = ["DingTalkEventReceiverPlugin"]

URL_PREFIX = "/dingtalk"


def _conf(key: str, fallback: str) -> str:
    from airflow.configuration import conf

    return str(conf.get("dingtalk", key, fallback=fallback))


def _load_config() -> Any:
    # Core Connection: in the API server it reads env vars, secrets backends *and* the metadata DB.
    from airflow.models.connection import Connection

    from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

    conn = Connection.get_connection_from_secrets(_conf("callback_conn_id", "dingtalk_callback_default"))
    return CallbackConfig.from_connection(conn)


_CARD_CONFIG_TTL = 30.0


class _CardConfig:
    """The ``dingtalk`` connection's card settings, re-read at most every ``_CARD_CONFIG_TTL`` seconds."""

    def __init__(self) -> None:
        self._extra: dict[str, Any] = {}
        self._read_at = -_CARD_CONFIG_TTL

    def extra(self) -> dict[str, Any]:
        import time

        if time.monotonic() - self._read_at >= _CARD_CONFIG_TTL:
            from airflow.models.connection import Connection

            conn = Connection.get_connection_from_secrets(_conf("card_conn_id", "dingtalk_default"))
            self._extra, self._read_at = dict(conn.extra_dejson), time.monotonic()
        return self._extra

    def api_secret(self) -> str | None:
        secret = self.extra().get("card_callback_api_secret")
        return str(secret) if secret else None

    def user_map(self) -> dict[str, str]:
        from airflow_provider_dingtalk.messages.hitl_card import parse_user_map

        return parse_user_map(self.extra().get("hitl_users"))

    def stream_app(self) -> Any:
        """The app to listen as for card clicks, or ``None`` while nobody may answer from DingTalk."""
        from airflow.models.connection import Connection

        from airflow_provider_dingtalk.hooks.base import app_config

        if not self.user_map():
            return None
        conn_id = _conf("card_conn_id", "dingtalk_default")
        return app_config(conn_id, Connection.get_connection_from_secrets(conn_id))


_cards: list[tuple[_CardConfig, Any]] = []


def _card_handler() -> tuple[_CardConfig, Any]:
    """The API server process's card settings and click handler, shared by HTTP and Stream."""
    if not _cards:
        from airflow_provider_dingtalk.events.card_callback import CardClickHandler
        from airflow_provider_dingtalk.events.hitl_answers import AirflowHITLAnswers

        cards = _CardConfig()
        _cards.append((cards, CardClickHandler(answers=AirflowHITLAnswers(), user_map=cards.user_map)))
    return _cards[0]


class CardStreamOnLifespan:
    """Root ASGI middleware: the card-click Stream listener runs from the API server's start to its stop.

    Everything but the ``lifespan`` scope passes straight through.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._listener: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
            elif message["type"] == "lifespan.shutdown" and self._listener is not None:
                import asyncio

                await asyncio.to_thread(self._listener.stop)
            return message

        await self.app(scope, watched, send)

    def _start(self) -> None:
        from airflow_provider_dingtalk.events.card_stream import CardStreamListener

        cards, handler = _card_handler()
        self._listener = CardStreamListener(app=cards.stream_app, handler=handler)
        self._listener.start()


class _LazyReceiver:
    """An ASGI app that builds the real receiver on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    def _build(self) -> Any:
        from airflow_provider_dingtalk.events.app import create_receiver_app
        from airflow_provider_dingtalk.events.card_callback import add_card_callback_route
        from airflow_provider_dingtalk.events.dedup import DEFAULT_LEASE
        from airflow_provider_dingtalk.events.sinks import DatabaseAssetSink
        from airflow_provider_dingtalk.state import backend_for

        app = create_receiver_app(
            config=_load_config,
            sink=DatabaseAssetSink(),
            dedup=backend_for().event_store(lease=DEFAULT_LEASE, clock=time.time),
            path="/events",
        )
        cards, handler = _card_handler()
        add_card_callback_route(app, handler=handler, api_secret=cards.api_secret, path="/cards/callback")
        return app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


def _off(key: str) -> bool:
    return _conf(key, "True").lower() in ("false", "0", "no", "off")


def _fastapi_apps() -> list[dict[str, Any]]:
    if _off("receiver_enabled"):
        return []
    return [{"app": _LazyReceiver(), "url_prefix": URL_PREFIX, "name": "DingTalk event receiver"}]


def _root_middlewares() -> list[dict[str, Any]]:
    if _off("card_stream_enabled"):
        return []
    return [{"middleware": CardStreamOnLifespan, "name": "DingTalk card clicks over Stream"}]


class DingTalkEventReceiverPlugin(AirflowPlugin):
    """Mounts the DingTalk event receiver on Airflow's API server."""

    name = "dingtalk_event_receiver"
    fastapi_apps = _fastapi_apps()
    fastapi_root_middlewares = _root_middlewares()
