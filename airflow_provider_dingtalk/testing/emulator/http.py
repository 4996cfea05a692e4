"""What every endpoint module needs: DingTalk's two error styles, auth, and request parsing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse

from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState


class OapiError(Exception):
    """Old-API error: HTTP 200 with ``{"errcode", "errmsg"}``; ``sub_code`` wraps it as 88 like topapi."""

    def __init__(self, errcode: int, errmsg: str, *, sub_code: int | None = None) -> None:
        self.errcode, self.errmsg, self.sub_code = errcode, errmsg, sub_code
        super().__init__(errmsg)


class V1Error(Exception):
    """v1.0 error: HTTP 4xx with ``{"code", "requestid", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def state_of(request: Request) -> EmulatorState:
    return request.app.state.emulator  # type: ignore[no-any-return]


def oapi_error_body(
    state: EmulatorState, errcode: int, errmsg: str, sub_code: int | None = None
) -> dict[str, Any]:
    if sub_code is not None:
        return {
            "errcode": 88,
            "errmsg": f"ding talk error[subcode={sub_code},submsg={errmsg}]",
            "sub_code": str(sub_code),
            "sub_msg": errmsg,
            "request_id": state.request_id(),
        }
    return {"errcode": errcode, "errmsg": errmsg, "request_id": state.request_id()}


def install_error_handlers(app: Any) -> None:
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    async def oapi(request: Request, exc: OapiError) -> JSONResponse:
        return JSONResponse(oapi_error_body(state_of(request), exc.errcode, exc.errmsg, exc.sub_code))

    async def v1(request: Request, exc: V1Error) -> JSONResponse:
        body = {"code": exc.code, "requestid": state_of(request).request_id(), "message": exc.message}
        return JSONResponse(body, status_code=exc.status)

    async def routing(request: Request, exc: HTTPException) -> Any:
        """An unknown path or a wrong method, answered as DingTalk's gateways do, not as FastAPI's."""
        if request.url.path.startswith("/_emulator") or exc.status_code not in (404, 405):
            return await http_exception_handler(request, exc)
        if request.url.path.startswith("/v1.0/"):
            # api.dingtalk.com answers both with this 404 (reported from a real call; one source).
            message = "specified api is not found, please check your url and method."
            return await v1(request, V1Error(404, "InvalidAction.NotFound", message))
        if exc.status_code == 405:
            # 43001 需要GET请求 / 43002 需要POST请求 (DingTalk's global error table).
            wants_get = "GET" in (exc.headers or {}).get("Allow", "")
            error = OapiError(43001, "需要GET请求") if wants_get else OapiError(43002, "需要POST请求")
            return await oapi(request, error)
        return await oapi(request, OapiError(404, "请求的URI地址不存在"))

    app.add_exception_handler(OapiError, oapi)
    app.add_exception_handler(V1Error, v1)
    app.add_exception_handler(HTTPException, routing)


def ok(state: EmulatorState, errmsg: str = "ok", **fields: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": errmsg, **fields, "request_id": state.request_id()}


def oapi_app(request: Request) -> EmulatedApp:
    """The app behind ``?access_token=``: DingTalk answers 41001 when it is missing, 40014 when invalid."""
    token = request.query_params.get("access_token")
    if not token:
        raise OapiError(41001, "缺少access_token参数")
    app = state_of(request).app_for_token(token, families=("oapi", "api"))
    if app is None:
        raise OapiError(40014, "不合法的access_token")
    return app


def v1_app(request: Request) -> EmulatedApp:
    """The app behind ``x-acs-dingtalk-access-token``; only v1.0 tokens are accepted there.

    Whether an old ``gettoken`` token works in the v1.0 header is unconfirmed, so the emulator
    refuses it: a client that passes here works against DingTalk either way.
    """
    token = request.headers.get("x-acs-dingtalk-access-token")
    app = state_of(request).app_for_token(token, families=("api",))
    if app is None:
        raise V1Error(400, "InvalidAuthentication", "不合法的access_token")
    return app


async def read_params(request: Request) -> dict[str, Any]:
    """Query + body, whether the body is JSON or form-encoded (topapi accepts both).

    Form fields that hold JSON (``msg``) are decoded, as DingTalk's TOP gateway does.
    """
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            params[key] = _maybe_json(value)
        return params
    if "application/json" not in ctype:
        raise OapiError(43004, "无效的HTTP HEADER Content-Type")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise OapiError(71010, "POST的json数据不包含所需要的参数字段或参数字段格式非法") from exc
    if not isinstance(body, dict):
        raise OapiError(71010, "POST的json数据不包含所需要的参数字段或参数字段格式非法")
    params.update(body)
    return params


async def read_v1_json(request: Request) -> dict[str, Any]:
    """v1.0 takes JSON only; anything else is HTTP 400 as DingTalk answers it."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "application/json" not in request.headers.get("content-type", ""):
        raise V1Error(400, "MissingBody", "body is mandatory for this action.")
    return body


def _maybe_json(value: str) -> Any:
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
