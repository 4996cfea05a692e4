"""Where verified events go: Airflow asset events on ``dingtalk://events/<EventType>``.

Two ways to create them, one per place the receiver runs:

* :class:`DatabaseAssetSink`, inside Airflow's API server (the plugin) or any process with access to
  the metadata database: Airflow's own ``AssetManager.register_asset_change`` in one transaction —
  the same call the REST endpoint ``POST /api/v2/assets/events`` makes, without an HTTP hop,
  credentials or a second service. This is the default and the most robust choice.
* :class:`RestApiAssetSink`, for the standalone receiver (``dingtalk-event-receiver``) that runs
  where the database is not reachable: the public REST API with a bearer token.

An ``AssetWatcher`` trigger was considered and not used: it needs the triggerer, a shared store for
the trigger to poll and adds the poll interval to every event, for no gain over writing the event
directly.

Either sink answers ``0`` when no asset has the event's URI (no DAG is scheduled on that event
type): there is nothing to run, and DingTalk must not keep retrying.

Several assets can share one URI (DAG authors name them differently). The database sink writes all
of them in one transaction, so a failure writes none; the REST sink writes one per call, so it
remembers which assets a delivery already wrote and DingTalk's retry writes only the rest.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk.event_types import event_asset_uri
from airflow_provider_dingtalk.events.dedup import DedupStore, event_key
from airflow_provider_dingtalk.state import EventStore

__all__ = ["AssetEventSink", "DatabaseAssetSink", "RestApiAssetSink", "SinkUnavailable", "event_extra"]

log = logging.getLogger(__name__)


class SinkUnavailable(Exception):
    """The asset event could not be written now; DingTalk should retry later."""


class AssetEventSink(Protocol):
    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        """Create the asset events for one DingTalk event; return how many were created."""


def event_extra(event_type: str, event: dict[str, Any]) -> dict[str, Any]:
    """The asset event's ``extra``: the event type and the decrypted DingTalk event as ``payload``."""
    return {"source": "dingtalk", "event_type": event_type, "payload": event}


class DatabaseAssetSink:
    """Write asset events straight into Airflow's metadata DB (inside the API server)."""

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        from airflow.assets.manager import asset_manager
        from airflow.models.asset import AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        uri = event_asset_uri(event_type)
        try:
            with create_session() as session:
                # Every asset with this URI, whatever name the DAG author gave it.
                assets = session.scalars(select(AssetModel).where(AssetModel.uri == uri)).all()
                created = 0
                for asset in assets:
                    if asset_manager.register_asset_change(
                        asset=asset, extra=event_extra(event_type, event), session=session
                    ):
                        created += 1
                return created
        except Exception as exc:  # the DB is down, locked, not migrated …
            raise SinkUnavailable(f"could not write the asset event: {type(exc).__name__}") from exc


class RestApiAssetSink:
    """Create asset events through Airflow's REST API (``POST /api/v2/assets/events``).

    :param base_url: the API server, e.g. ``http://airflow-api:8080``.
    :param username: with ``password``: fetch a JWT from ``POST /auth/token`` (simple or FAB auth manager).
    :param password: see ``username``.
    :param token: a ready JWT instead of username/password.
    :param timeout: seconds per request. Longer than DingTalk's ~1.5 s deadline on purpose: a late
        answer only costs a DingTalk retry, which the receiver's de-duplication acknowledges, while
        giving up early can abandon a POST that Airflow still commits — and then the retry would
        create a second asset event. (The first POST after an API server starts took 1.4 s here.)
    :param progress: where to remember which assets got an event already, so that a retry after a
        partial failure does not write them twice; pass the receiver's de-dup store to share its file
        (default: in memory, lost on restart).
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        progress: EventStore | None = None,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        # Kept as Secret so that a traceback printing locals or attributes shows neither.
        self._username, self._timeout = username, timeout
        self._password, self._token = Secret(password or ""), Secret(token or "")
        self._session = requests.Session()
        self._progress = progress or DedupStore(None)

    def _auth(self, *, renew: bool = False) -> dict[str, str]:
        if (renew or not self._token) and self._username:
            resp = self._session.post(
                f"{self.base_url}/auth/token",
                json={"username": self._username, "password": self._password.reveal()},
                timeout=self._timeout,
            )
            if not resp.ok:
                raise SinkUnavailable(
                    f"Airflow refused the login for {self._username!r}: HTTP {resp.status_code}"
                )
            self._token = Secret(str(resp.json().get("access_token") or ""))
            log.info("Logged in to Airflow at %s as %r", self.base_url, self._username)
        return {"Authorization": f"Bearer {self._token.reveal()}"} if self._token else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        try:
            resp = self._session.request(
                method, self.base_url + path, headers=self._auth(), timeout=self._timeout, **kwargs
            )
            if resp.status_code == 401 and self._username:  # the JWT expired
                resp = self._session.request(
                    method,
                    self.base_url + path,
                    headers=self._auth(renew=True),
                    timeout=self._timeout,
                    **kwargs,
                )
        except requests.RequestException as exc:
            raise SinkUnavailable(f"Airflow API unreachable: {type(exc).__name__}") from None
        if not resp.ok:
            raise SinkUnavailable(f"Airflow API {method} {path} answered HTTP {resp.status_code}")
        return resp.json()

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        uri = event_asset_uri(event_type)
        found = self._call("GET", "/api/v2/assets", params={"uri_pattern": uri, "limit": 100})
        # uri_pattern is a substring match ("_" is a LIKE wildcard too): keep exact matches only.
        ids = [a["id"] for a in found.get("assets", []) if a.get("uri") == uri]
        key = event_key(event)
        for asset_id in ids:
            written = f"{key}/asset/{asset_id}"
            if self._progress.is_done(written):
                continue  # written by an earlier delivery that failed on a later asset
            self._call(
                "POST",
                "/api/v2/assets/events",
                json={"asset_id": asset_id, "extra": event_extra(event_type, event)},
            )
            self._progress.finish(written)
        return len(ids)
