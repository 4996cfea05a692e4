"""``dingtalk-event-receiver``: the receiver on its own, for teams that don't expose Airflow's API server.

It serves the same app as the plugin, but writes asset events through Airflow's public REST API
(:class:`~.sinks.RestApiAssetSink`), so it needs only HTTP access to the API server and a user
allowed to create asset events — no metadata database. The ``dingtalkcallback`` connection is read
the normal way for code outside a task: ``AIRFLOW_CONN_*`` environment variables and the configured
secrets backend.

Secrets never go on the command line (other users see it in ``ps``): the Airflow password and
token come from files or environment variables.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["PASSWORD_ENV", "TOKEN_ENV", "build_receiver", "main"]

log = logging.getLogger(__name__)

PASSWORD_ENV = "DINGTALK_RECEIVER_AIRFLOW_PASSWORD"
TOKEN_ENV = "DINGTALK_RECEIVER_AIRFLOW_TOKEN"
DEFAULT_PORT = 8932


def build_receiver(
    *,
    airflow_url: str,
    callback_conn_id: str = "dingtalk_callback_default",
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    path: str = "/dingtalk/events",
    state_file: Path | None = None,
    timeout: float = 10.0,
) -> FastAPI:
    """The receiver app posting to Airflow's REST API; reads and checks the connection now.

    :param airflow_url: the API server's base URL, e.g. ``http://airflow-api:8080``.
    :param callback_conn_id: the ``dingtalkcallback`` connection (token, aes_key, receiver id).
    :param username: with ``password``: log in at ``POST /auth/token``, again whenever a JWT expires.
    :param password: see ``username``.
    :param token: a ready JWT instead (it is not renewed; when it expires events are answered 503).
    :param path: the URL path DingTalk posts to.
    :param state_file: SQLite file remembering handled events (default: ``[dingtalk] state_backend``:
        the provider's state folder, in memory if that folder cannot be made safely, or Redis).
    :param timeout: seconds per REST call (see :class:`~.sinks.RestApiAssetSink` for why it exceeds
        DingTalk's 1.5 s deadline).
    :raises DingTalkValidationError: the connection is incomplete (naming the field).
    :raises AirflowNotFoundException: the connection does not exist.
    """
    import time

    from airflow_provider_dingtalk.events.app import create_receiver_app
    from airflow_provider_dingtalk.events.dedup import DEFAULT_LEASE, DedupStore
    from airflow_provider_dingtalk.events.sinks import RestApiAssetSink
    from airflow_provider_dingtalk.hooks.event_callback import DingTalkEventCallbackHook
    from airflow_provider_dingtalk.state import EventStore, backend_for

    config = DingTalkEventCallbackHook(dingtalk_callback_conn_id=callback_conn_id).get_config()
    # One store for handled events and for assets already written.
    store: EventStore = (
        DedupStore(state_file)
        if state_file is not None
        else backend_for().event_store(lease=DEFAULT_LEASE, clock=time.time)
    )
    sink = RestApiAssetSink(
        airflow_url, username=username, password=password, token=token, timeout=timeout, progress=store
    )
    return create_receiver_app(config=config, sink=sink, dedup=store, path=path)


def _secret(file: Path | None, env: str) -> str | None:
    if file is not None:
        return file.read_text(encoding="utf-8").strip() or None
    return os.environ.get(env) or None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dingtalk-event-receiver",
        description="Receive DingTalk event callbacks and create Airflow asset events through the REST API.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument("--path", default="/dingtalk/events", help="URL path (default: /dingtalk/events)")
    p.add_argument(
        "--callback-conn-id",
        default="dingtalk_callback_default",
        help="the dingtalkcallback connection (default: dingtalk_callback_default)",
    )
    p.add_argument("--airflow-url", required=True, help="Airflow API server, e.g. http://airflow-api:8080")
    p.add_argument("--username", help="Airflow user allowed to create asset events (logs in at /auth/token)")
    p.add_argument("--password-file", type=Path, help=f"file holding the password (else ${PASSWORD_ENV})")
    p.add_argument(
        "--token-file", type=Path, help=f"file holding a JWT instead of a login (else ${TOKEN_ENV})"
    )
    p.add_argument(
        "--state-file",
        type=Path,
        help="SQLite file of handled events (default: [dingtalk] state_backend: the state folder, or Redis)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per Airflow API call (default: 10)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the receiver until SIGINT/SIGTERM; exit 2 when the connection or options are unusable."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    password = _secret(args.password_file, PASSWORD_ENV)
    token = None if args.username else _secret(args.token_file, TOKEN_ENV)
    if args.username and not password:
        print(f"dingtalk-event-receiver: --username needs --password-file or ${PASSWORD_ENV}", flush=True)
        return 2
    try:
        app = build_receiver(
            airflow_url=args.airflow_url,
            callback_conn_id=args.callback_conn_id,
            username=args.username,
            password=password,
            token=token,
            path=args.path,
            state_file=args.state_file,
            timeout=args.timeout,
        )
    except Exception as exc:  # the messages name the connection field, never its value
        print(f"dingtalk-event-receiver: {type(exc).__name__}: {exc}", flush=True)
        return 2

    import uvicorn

    print(
        f"DingTalk event receiver on http://{args.host}:{args.port}{args.path} → {args.airflow_url}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
