"""Access tokens: ``GET /gettoken`` (old API) and ``POST /v1.0/oauth2/accessToken`` (v1.0)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_dingtalk.testing.emulator.http import OapiError, V1Error, ok, read_v1_json, state_of

router = APIRouter()


@router.get("/gettoken")
async def gettoken(request: Request) -> dict[str, Any]:
    state = state_of(request)
    key = request.query_params.get("appkey") or request.query_params.get("corpid")
    secret = request.query_params.get("appsecret") or request.query_params.get("corpsecret")
    app = state.apps.get(key or "")
    if app is None or secret != app.app_secret:
        raise OapiError(40089, "不合法的corpid或corpsecret或者不合法的appkey或appsecret")
    token, expires_in = state.issue_token(app, "oapi")
    return ok(state, access_token=token, expires_in=expires_in)


@router.post("/v1.0/oauth2/accessToken")
async def access_token(request: Request) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    app = state.apps.get(str(body.get("appKey") or ""))
    if app is None or body.get("appSecret") != app.app_secret:
        raise V1Error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    token, expires_in = state.issue_token(app, "api")
    return {"accessToken": token, "expireIn": expires_in}
