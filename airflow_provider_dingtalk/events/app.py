"""The receiver: a FastAPI app that verifies DingTalk's event pushes and turns them into asset events.

What it answers (DingTalk retries anything but an encrypted ``success``):

======  ===========================================================================================
200     verified: the encrypted ``success`` (for ``check_url`` and for every event, duplicates too)
400     missing query parameters or one given twice, a body that is not ``{"encrypt": "<base64>"}``, an
        event without EventType
403     anything the crypto refuses: wrong signature (token), stale timestamp, undecryptable data
        (wrong aes_key), a message for another receiver id (corpId/AppKey)
408     the body did not arrive within ``body_timeout`` seconds
413     body larger than ``max_body_bytes``
503     not configured yet, the asset event could not be written, an earlier delivery of the same
        event is still writing it, or the shared record of handled events (Redis) is unreachable:
        DingTalk retries later
======  ===========================================================================================

Never a 500: unexpected errors are logged (without secrets) and answered 503.

A re-delivered event is acknowledged only once it is recorded: while another delivery is still
writing it, the retry waits up to ``duplicate_wait`` seconds for that write, and takes the event over
if the write fails; if it is still being written, the retry gets 503 and DingTalk comes back.

When ``config`` is a function (the plugin reads the ``dingtalkcallback`` connection), it is called
again every ``config_ttl`` seconds, and at most once a second when a request fails the signature or
decryption check, so a rotated token or aes_key is picked up without a restart, while forged requests
cannot make every request a secrets-backend round trip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_dingtalk.crypto import ERR_TIMESTAMP, DingTalkCrypto
from airflow_provider_dingtalk.events.dedup import DedupStore, event_key
from airflow_provider_dingtalk.events.sinks import AssetEventSink, SinkUnavailable
from airflow_provider_dingtalk.exceptions import DingTalkCryptoError
from airflow_provider_dingtalk.state import Claim, EventStore, StateUnavailable

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_CONFIG_TTL",
    "DEFAULT_DUPLICATE_WAIT",
    "DEFAULT_MAX_BODY_BYTES",
    "create_receiver_app",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # DingTalk events are a few hundred bytes once encrypted
DEFAULT_BODY_TIMEOUT = 5.0  # DingTalk gives up after about 1.5 s; a body slower than this is not DingTalk
DEFAULT_DUPLICATE_WAIT = 1.0  # leaves the retry's answer inside DingTalk's ~1.5 s deadline
DEFAULT_CONFIG_TTL = 60.0
_REFRESH_AFTER_REFUSAL = 1.0  # at most one re-read a second, however many forged requests come in
_POLL = 0.05
_QUERY_NAMES = {"signature": ("msg_signature", "signature"), "timestamp": ("timeStamp", "timestamp")}


def _quietly(step: Callable[[str], None], key: str) -> None:
    try:
        step(key)
    except StateUnavailable as exc:
        log.error("Could not update the record of handled DingTalk events: %s", exc)


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(reason)


def create_receiver_app(
    *,
    config: CallbackConfig | Callable[[], CallbackConfig],
    sink: AssetEventSink,
    dedup: EventStore | None = None,
    path: str = "/dingtalk/events",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    duplicate_wait: float = DEFAULT_DUPLICATE_WAIT,
    config_ttl: float = DEFAULT_CONFIG_TTL,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the receiver app.

    :param config: the callback's token, aes_key and receiver id, or a function that returns them
        (called on each request until it succeeds, so the app can start before the connection
        exists, and then again every ``config_ttl`` seconds).
    :param sink: creates the asset events (:class:`~.sinks.DatabaseAssetSink` inside Airflow).
    :param dedup: remembers handled events; default in memory only. Receivers that share one
        (the Redis backend's) create one asset event per event between them.
    :param path: the URL path DingTalk posts to.
    :param max_body_bytes: larger bodies are refused with 413 before they are read completely.
    :param body_timeout: seconds a client may take to send its body; slower ones get 408.
    :param duplicate_wait: seconds a re-delivery waits for an earlier delivery still writing the
        same event before it is answered 503.
    :param config_ttl: seconds before a ``config`` function is called again.
    :param clock: current time in seconds, for the timestamp window.
    :param monotonic: for ``config_ttl`` and the waits; tests pass a fake one.
    """
    app = FastAPI(title="DingTalk event receiver", docs_url=None, redoc_url=None, openapi_url=None)
    seen = dedup or DedupStore(None)
    keys = _Keys(config, clock=clock, monotonic=monotonic, ttl=config_ttl)

    def handle(event_type: str, event: dict[str, Any]) -> None:
        key = event_key(event)
        deadline = monotonic() + duplicate_wait
        try:
            while (claim := seen.claim(key)) is Claim.PENDING and monotonic() < deadline:
                time.sleep(_POLL)  # another delivery is writing it: its outcome decides our answer
        except StateUnavailable as exc:
            # Without the shared record another receiver may be writing this very event: writing it
            # here too could make two asset events. DingTalk retries until the record is back.
            log.error("DingTalk %s event not recorded: %s", event_type, exc)
            raise _Refuse(503, "event store unavailable; retry later") from None
        if claim is Claim.DONE:
            log.info("DingTalk re-delivered a %s event; already recorded", event_type)
            return
        if claim is Claim.PENDING:
            log.info("DingTalk re-delivered a %s event still being recorded; asking it to retry", event_type)
            raise _Refuse(503, "event still being recorded; retry later")
        try:
            created = sink.emit(event_type, event)
        except SinkUnavailable as exc:
            _quietly(seen.release, key)  # let DingTalk's retry try again
            log.warning("DingTalk %s event not recorded: %s", event_type, exc)
            raise _Refuse(503, "event not recorded; retry later") from None
        except BaseException:
            _quietly(seen.release, key)
            raise
        # The asset event exists: answer success even if the record of it cannot be written now, or
        # DingTalk's retry would create a second one (a pending claim expires after the lease).
        _quietly(seen.finish, key)
        if created:
            log.info("DingTalk %s event → %d asset event(s)", event_type, created)
        else:
            log.info("DingTalk %s event ignored: no DAG is scheduled on its asset", event_type)

    @app.post(path)
    async def receive(request: Request) -> JSONResponse:
        try:
            signature, timestamp, nonce = _query(request)
            try:
                body = await asyncio.wait_for(_read_body(request, max_body_bytes), body_timeout)
            except TimeoutError:
                raise _Refuse(408, f"body not received within {body_timeout:g} s") from None
            encrypt = _encrypt_field(body)
            box = keys.fresh()
            if box is None:  # the first request, or a re-read is due: it may block, so not on the loop
                box = await asyncio.to_thread(keys.load)
            try:
                plaintext = box.open(signature=signature, timestamp=timestamp, nonce=nonce, encrypt=encrypt)
            except DingTalkCryptoError as exc:
                # Maybe the token or aes_key was rotated: read the connection again (bounded) and retry once.
                newer = None if exc.code == ERR_TIMESTAMP else await asyncio.to_thread(keys.reload_after, box)
                if newer is None:
                    raise _Refuse(403, f"refused: crypto error {exc.code}") from None
                try:
                    plaintext = newer.open(
                        signature=signature, timestamp=timestamp, nonce=nonce, encrypt=encrypt
                    )
                except DingTalkCryptoError as again:
                    raise _Refuse(403, f"refused: crypto error {again.code}") from None
                box = newer  # answer with the settings that verified the request
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


class _Keys:
    """The crypto for the current settings; a ``config`` function is called again when due."""

    def __init__(
        self,
        config: CallbackConfig | Callable[[], CallbackConfig],
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        ttl: float,
    ) -> None:
        self._config, self._clock, self._monotonic, self._ttl = config, clock, monotonic, ttl
        self._box: DingTalkCrypto | None = None
        self._settings: CallbackConfig | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def fresh(self) -> DingTalkCrypto | None:
        """The crypto if no read is due (no blocking call: this runs on the event loop)."""
        box = self._box
        if box is not None and (
            not callable(self._config) or self._monotonic() - self._loaded_at < self._ttl
        ):
            return box
        return None

    def load(self) -> DingTalkCrypto:
        """Read the settings (blocking); on failure keep the last good ones, or answer 503 without any."""
        with self._lock:
            box = self.fresh()
            return box if box is not None else self._read()

    def reload_after(self, refused: DingTalkCrypto) -> DingTalkCrypto | None:
        """After ``refused`` failed a check: newer settings to try, or ``None`` (none, or read just now)."""
        if not callable(self._config):
            return None
        with self._lock:
            if self._box is not refused:  # another request re-read meanwhile
                return self._box
            if self._monotonic() - self._loaded_at < _REFRESH_AFTER_REFUSAL:
                return None
            box = self._read()
            return None if box is refused else box

    def _read(self) -> DingTalkCrypto:
        self._loaded_at = self._monotonic()
        try:
            settings = self._config() if callable(self._config) else self._config
            if self._box is not None and settings == self._settings:
                return self._box  # unchanged (the usual case): no new cipher to build
            box: DingTalkCrypto = settings.crypto(clock=self._clock)
        except Exception as exc:
            if self._box is None:
                log.warning("DingTalk receiver is not configured: %s", type(exc).__name__)
                raise _Refuse(503, "receiver not configured") from None
            log.warning(
                "DingTalk receiver could not re-read its settings (%s); keeping the previous ones",
                type(exc).__name__,
            )
            return self._box
        self._box, self._settings = box, settings
        log.info("DingTalk receiver settings (re)loaded for receiver id %s", settings.receiver_id)
        return box


def _query(request: Request) -> tuple[str, str, str]:
    """Signature, timestamp and nonce; a parameter given twice (or both spellings, differing) is refused."""
    query = request.query_params
    found: dict[str, str | None] = {}
    for what, names in {**_QUERY_NAMES, "nonce": ("nonce",)}.items():
        values = [v for name in names for v in query.getlist(name)]
        # Which of two values would be checked depends on the parser: refuse instead of guessing.
        if len(set(values)) > 1 or any(len(query.getlist(name)) > 1 for name in names):
            raise _Refuse(400, f"query parameter {'/'.join(names)} given more than once")
        found[what] = values[0] if values else None
    signature, timestamp, nonce = found["signature"], found["timestamp"], found["nonce"]
    if not (signature and timestamp and nonce):
        raise _Refuse(400, "missing signature, timestamp or nonce")
    return signature, timestamp, nonce


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
