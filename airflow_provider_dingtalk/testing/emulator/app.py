"""The emulator's ASGI app: every endpoint module, plus request logging and fault injection."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import pkgutil
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI

from airflow_provider_dingtalk._redact import MASK, redact
from airflow_provider_dingtalk.testing.emulator import control, endpoints
from airflow_provider_dingtalk.testing.emulator.http import install_error_handlers, oapi_error_body
from airflow_provider_dingtalk.testing.emulator.state import EmulatorState, Fault, RequestRecord

CONTROL_PREFIX = "/_emulator"
_SECRET_KEYS = {"appsecret", "appSecret", "app_secret", "aes_key", "token", "secret", "access_token", "sign",
                "clientSecret", "apiSecret"}  # fmt: skip
_LOGGED_HEADERS = ("content-type", "user-agent", "x-acs-dingtalk-access-token")


class DroppedConnection(Exception):
    """Raised inside the app to make uvicorn close the connection, as a broken network would."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def create_app(state: EmulatorState) -> FastAPI:
    app = FastAPI(title="DingTalk emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = state
    install_error_handlers(app)
    app.include_router(control.router)
    for info in pkgutil.iter_modules(endpoints.__path__):
        module = importlib.import_module(f"{endpoints.__name__}.{info.name}")
        app.include_router(module.router)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    return _LogAndFaults(app, state)  # type: ignore[return-value]


def scrub(value: Any, secrets: list[str]) -> Any:
    """Mask secrets in a logged request or response, by key name and by value."""
    if isinstance(value, dict):
        return {k: MASK if k in _SECRET_KEYS and v else scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        return redact(value, secrets)
    return value


class _LogAndFaults:
    """Pure ASGI wrapper: logs each request (secrets masked) and applies injected faults."""

    def __init__(self, app: FastAPI, state: EmulatorState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # Stream mode's socket, plain ASGI: see endpoints/stream.py
            from airflow_provider_dingtalk.testing.emulator.endpoints.stream import serve_socket

            await serve_socket(self.state, scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        record = self._record(scope, body)
        fault = self.state.take_fault(scope["path"])
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.drop == "before":
            await _break(send)
        if fault and (fault.errcode is not None or fault.status is not None):
            await self._fault_answer(fault, record, send)
            return

        sent_body = bytearray()

        async def replay() -> dict[str, Any]:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            elif message["type"] == "http.response.body":
                sent_body.extend(message.get("body", b""))
            if not (fault and fault.drop == "after"):
                await send(message)

        await self.app(scope, replay, capture)
        record.response = self._scrub_json(bytes(sent_body))
        if fault and fault.drop == "after":
            await _break(send)  # the request was handled; its answer is lost on the way

    def _record(self, scope: dict[str, Any], body: bytes) -> RequestRecord:
        from urllib.parse import parse_qsl

        secrets = self.state.known_secrets()
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
            parsed: Any = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            parsed = self._parse(body)
        record = RequestRecord(
            method=scope["method"],
            path=scope["path"],
            query=scrub(query, secrets),
            body=scrub(parsed, secrets),
            headers=scrub({k: headers[k] for k in _LOGGED_HEADERS if k in headers}, secrets)
            | ({"x-acs-dingtalk-access-token": MASK} if "x-acs-dingtalk-access-token" in headers else {}),
            time=self.state.clock.now(),
        )
        with self.state.lock:
            self.state.requests.append(record)
            self.state.calls[scope["path"]] += 1
        return record

    async def _fault_answer(self, fault: Fault, record: RequestRecord, send: Any) -> None:
        if fault.errcode is not None:
            status = 200
            payload: Any = oapi_error_body(
                self.state, fault.errcode, fault.errmsg or "injected fault", fault.sub_code
            )
        else:
            status = fault.status or 500
            payload = (
                fault.body if fault.body is not None else f"<html><body>{status} Bad Gateway</body></html>"
            )
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        ctype = b"text/html" if isinstance(payload, str) else b"application/json"
        record.status, record.response = status, payload
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(raw)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    def _scrub_json(self, raw: bytes) -> Any:
        return scrub(self._parse(raw), self.state.known_secrets())

    @staticmethod
    def _parse(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _break(send: Any) -> None:
    """Start an answer that promises a body, then close: the client sees a connection reset mid-response."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"errcode":', "more_body": True})
    raise DroppedConnection
