"""Airflow plugin: the DingTalk event receiver on the API server, at ``<api base>/dingtalk/events``.

Configured from the ``dingtalkcallback`` connection named by ``[dingtalk] callback_conn_id``
(default ``dingtalk_callback_default``), read on the first request, so the API server starts even
before the connection exists (requests are then answered 503), and read again every minute and
after a failed signature check, so a rotated token or aes_key is picked up without a restart.
``[dingtalk] receiver_enabled = False`` removes the endpoint. Asset events are written with
:class:`~.sinks.DatabaseAssetSink`, and handled events are remembered in the provider's private
state folder.

Registered as an ``airflow.plugins`` entry point, which Airflow loads on every install; plugins
declared in provider info load only with ``[core] lazy_discover_providers = False`` (see "Plugins" in
Airflow's documentation). Plugins load in every Airflow process, so FastAPI and the receiver load only
on the first request.
"""

from __future__ import annotations

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


class _LazyReceiver:
    """An ASGI app that builds the real receiver on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    def _build(self) -> Any:
        from airflow_provider_dingtalk._filelock import state_dir
        from airflow_provider_dingtalk.events.app import create_receiver_app
        from airflow_provider_dingtalk.events.dedup import DedupStore
        from airflow_provider_dingtalk.events.sinks import DatabaseAssetSink

        folder = state_dir()
        return create_receiver_app(
            config=_load_config,
            sink=DatabaseAssetSink(),
            dedup=DedupStore(folder / "callback-events.sqlite3" if folder else None),
            path="/events",
        )

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
