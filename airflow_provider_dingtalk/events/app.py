"""The receiver: a FastAPI app that verifies DingTalk's event pushes and turns them into asset events.

What it answers (DingTalk retries anything but an encrypted ``success``):

======  ===========================================================================================
200     verified: the encrypted ``success`` (for ``check_url`` and for every event, duplicates too)
400     missing query parameters, a body that is not ``{"encrypt": "<base64>"}``, an event without EventType
403     anything the crypto refuses: wrong signature (token), stale timestamp, undecryptable data
        (wrong aes_key), a message for another receiver id (corpId/AppKey)
413     body larger than ``max_body_bytes``
503     not configured yet, or the asset event could not be written: DingTalk retries later
======  ===========================================================================================

Never a 500: unexpected errors are logged (without secrets) and answered 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_dingtalk.crypto import DingTalkCrypto
from airflow_provider_dingtalk.events.dedup import DedupStore, event_key
from airflow_provider_dingtalk.events.sinks import AssetEventSink, SinkUnavailable
from airflow_provider_dingtalk.exceptions import DingTalkCryptoError

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_receiver_app"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # DingTalk events are a few hundred bytes once encrypted


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(reason)


def create_receiver_app(
    *,
    config: CallbackConfig | Callable[[], CallbackConfig],
    sink: AssetEventSink,
    dedup: DedupStore | None = None,
    path: str = "/dingtalk/events",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the receiver app.

    :param config: the callback's token, aes_key and receiver id, or a function that returns them
        (called on each request until it succeeds, so the app can start before the connection exists).
    :param sink: creates the asset events (:class:`~.sinks.DatabaseAssetSink` inside Airflow).
    :param dedup: remembers handled events; default in memory only.
    :param path: the URL path DingTalk posts to.
    :param max_body_bytes: larger bodies are refused with 413 before they are read completely.
    :param clock: current time in seconds, for the timestamp window.
    """
    app = FastAPI(title="DingTalk event receiver", docs_url=None, redoc_url=None, openapi_url=None)
    seen = dedup or DedupStore(None)
    cached: list[DingTalkCrypto] = []

    def crypto() -> DingTalkCrypto:
        if not cached:
            try:
                settings = config() if callable(config) else config
                cached.append(settings.crypto(clock=clock))
            except Exception as exc:
                log.warning("DingTalk receiver is not configured: %s", type(exc).__name__)
                raise _Refuse(503, "receiver not configured") from None
        return cached[0]

    def handle(event_type: str, event: dict[str, Any]) -> None:
        key = event_key(event)
        if not seen.claim(key):
            log.info("DingTalk re-delivered a %s event; already handled", event_type)
            return
        try:
            created = sink.emit(event_type, event)
        except SinkUnavailable as exc:
            seen.release(key)  # let DingTalk's retry try again
            log.warning("DingTalk %s event not recorded: %s", event_type, exc)
            raise _Refuse(503, "event not recorded; retry later") from None
        except BaseException:
            seen.release(key)
            raise
        if created:
            log.info("DingTalk %s event → %d asset event(s)", event_type, created)
        else:
            log.info("DingTalk %s event ignored: no DAG is scheduled on its asset", event_type)

    @app.post(path)
    async def receive(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes)
            query = request.query_params
            signature = query.get("msg_signature") or query.get("signature")
            timestamp = query.get("timeStamp") or query.get("timestamp")
            nonce = query.get("nonce")
            if not (signature and timestamp and nonce):
                raise _Refuse(400, "missing signature, timestamp or nonce")
            encrypt = _encrypt_field(body)
            box = crypto()
            try:
                plaintext = box.open(signature=signature, timestamp=timestamp, nonce=nonce, encrypt=encrypt)
            except DingTalkCryptoError as exc:
                raise _Refuse(403, f"refused: crypto error {exc.code}") from None
            event = _event(plaintext)
            event_type = event["EventType"]
            if event_type != "check_url":
                await asyncio.to_thread(handle, event_type, event)
            return JSONResponse(box.encrypt("success"))
        except _Refuse as refuse:
            return JSONResponse({"error": refuse.reason}, status_code=refuse.status)
        except Exception as exc:  # a bug must not become a 500 page with a traceback
            log.error("DingTalk receiver failed on a request: %s", type(exc).__name__)
            return JSONResponse({"error": "receiver error; retry later"}, status_code=503)

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "").lstrip("0")
    # isascii: "²".isdigit() is true but int("²") fails; the length test keeps int() off thousands of
    # digits (ValueError). Both used to end in the catch-all 503.
    is_number = declared.isascii() and declared.isdigit()
    if is_number and (len(declared) > len(str(limit)) or int(declared) > limit):
        raise _Refuse(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refuse(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _encrypt_field(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a deeply nested body, e.g. 30,000 "["
        raise _Refuse(400, 'body must be JSON {"encrypt": "..."}') from None
    encrypt = data.get("encrypt") if isinstance(data, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise _Refuse(400, 'body must be JSON {"encrypt": "..."}')
    return encrypt


def _event(plaintext: str) -> dict[str, Any]:
    try:
        event = json.loads(plaintext)
    except (ValueError, RecursionError):
        raise _Refuse(400, "decrypted message is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("EventType"), str) or not event["EventType"]:
        raise _Refuse(400, "decrypted message has no EventType")
    if not event["EventType"].replace("_", "").isalnum():
        raise _Refuse(400, "EventType has unexpected characters")
    return event
