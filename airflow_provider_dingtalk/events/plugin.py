"""Airflow plugin: the DingTalk event receiver on the API server, at ``<api base>/dingtalk/events``,
and the interactive cards' HTTP callback at ``<api base>/dingtalk/cards/callback``.

Configured from the ``dingtalk_callback`` connection named by ``[dingtalk] callback_conn_id``
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
again at most every ``_CARD_CONFIG_TTL`` seconds, and writes answers to the metadata DB.

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


class _LazyReceiver:
    """An ASGI app that builds the real receiver on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    def _build(self) -> Any:
        from airflow_provider_dingtalk.events.app import create_receiver_app
        from airflow_provider_dingtalk.events.card_callback import CardClickHandler, add_card_callback_route
        from airflow_provider_dingtalk.events.dedup import DEFAULT_LEASE
        from airflow_provider_dingtalk.events.hitl_answers import AirflowHITLAnswers
        from airflow_provider_dingtalk.events.sinks import DatabaseAssetSink
        from airflow_provider_dingtalk.state import backend_for

        app = create_receiver_app(
            config=_load_config,
            sink=DatabaseAssetSink(),
            dedup=backend_for().event_store(lease=DEFAULT_LEASE, clock=time.time),
            path="/events",
        )
        cards = _CardConfig()
        handler = CardClickHandler(answers=AirflowHITLAnswers(), user_map=cards.user_map)
        add_card_callback_route(app, handler=handler, api_secret=cards.api_secret, path="/cards/callback")
        return app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


def _fastapi_apps() -> list[dict[str, Any]]:
    if _conf("receiver_enabled", "True").lower() in ("false", "0", "no", "off"):
        return []
    return [{"app": _LazyReceiver(), "url_prefix": URL_PREFIX, "name": "DingTalk event receiver"}]


class DingTalkEventReceiverPlugin(AirflowPlugin):
    """Mounts the DingTalk event receiver on Airflow's API server."""

    name = "dingtalk_event_receiver"
    fastapi_apps = _fastapi_apps()
