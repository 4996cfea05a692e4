"""Event callbacks (old ``call_back`` API): register, update, get, delete, failed list.

As DingTalk documents them: open-doc.dingtalk.com/microapp/serverapi2/pwz3r5 (注册事件回调接口 and
its siblings) and the README of github.com/open-dingtalk/DingTalk-Callback-Crypto (what is pushed
and the encrypted ``success`` answer).

Register and update really POST an encrypted ``check_url`` to the URL, as DingTalk does, and accept
the registration only if the answer decrypts to ``success`` (71009 otherwise, 71012 when the URL
cannot be reached). Events pushed with :func:`push_event` that the URL does not acknowledge land in
the failed list.

DingTalk has two setups, and pushes differ between them ("配置HTTP推送" and "注册回调" in DingTalk's
event subscription docs, and the official DingTalk-Callback-Crypto demos):

* ``register_call_back`` (the old API): the receiver id inside every plaintext is the corpId, and the
  query is spelled ``signature``/``timestamp``/``nonce``;
* an event subscription saved in the developer console (:func:`subscribe`; there is no API for it):
  the receiver id is the app's AppKey, and the query is ``msg_signature``/``timeStamp``/``nonce``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.crypto import DingTalkCrypto, new_nonce
from airflow_provider_dingtalk.event_types import is_known_tag
from airflow_provider_dingtalk.exceptions import DingTalkCryptoError, DingTalkValidationError
from airflow_provider_dingtalk.testing.emulator.http import OapiError, oapi_app, ok, read_params, state_of
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

DEADLINE = 1.5  # seconds DingTalk waits for the receiver (reported for the console check)
FAILED_PAGE = 200  # failed-list items per call
_BAD_BODY = "POST的json数据不包含所需要的参数字段或参数字段格式非法"


@dataclass(kw_only=True)
class Registration:
    tags: list[str]
    token: str
    aes_key: str
    url: str
    console: bool = False  # saved in the developer console rather than registered by API


@dataclass
class Callbacks:
    """Per corp: the registered callback and the events it failed to take; per AppKey: the console's."""

    registered: dict[str, Registration] = field(default_factory=dict)
    failed: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    console: dict[str, Registration] = field(default_factory=dict)


def _callbacks(state: EmulatorState) -> Callbacks:
    return state.store("callbacks", Callbacks)


def _parse_registration(state: EmulatorState, params: dict[str, Any]) -> Registration:
    tags, token, aes_key, url = (params.get(k) for k in ("call_back_tag", "token", "aes_key", "url"))
    if not isinstance(tags, list) or not tags:
        raise OapiError(71010, _BAD_BODY)
    if not (isinstance(token, str) and isinstance(aes_key, str) and isinstance(url, str)):
        raise OapiError(71010, _BAD_BODY)
    state.add_secret(token)
    state.add_secret(aes_key)
    if any(not isinstance(t, str) or not is_known_tag(t) for t in tags):
        raise OapiError(71008, "call_back_tag必须在指定的call_back_tag列表中")
    if not url.lower().startswith(("http://", "https://")):
        raise OapiError(71011, "url不合法")
    try:
        DingTalkCrypto(token=token, aes_key=aes_key, receiver_id="check")
    except (DingTalkCryptoError, DingTalkValidationError):
        raise OapiError(71010, _BAD_BODY) from None
    return Registration(tags=list(tags), token=token, aes_key=aes_key, url=url)


def deliver(state: EmulatorState, app: EmulatedApp, reg: Registration, event: dict[str, Any]) -> str:
    """POST ``event`` encrypted to ``reg.url``: ``"ok"``, ``"unreachable"`` or ``"bad_reply"``. Blocking."""
    import requests

    receiver_id = app.app_key if reg.console else app.corp_id
    crypto = DingTalkCrypto(
        token=reg.token, aes_key=reg.aes_key, receiver_id=receiver_id, clock=state.clock.now
    )
    sealed = crypto.encrypt(json.dumps(event, ensure_ascii=False), nonce=new_nonce(8))
    if reg.console:
        query = {k: sealed[k] for k in ("msg_signature", "timeStamp", "nonce")}
    else:
        query = {
            "signature": sealed["msg_signature"],
            "timestamp": sealed["timeStamp"],
            "nonce": sealed["nonce"],
        }
    try:
        resp = requests.post(reg.url, params=query, json={"encrypt": sealed["encrypt"]}, timeout=DEADLINE)
        reply = resp.json()
    except requests.RequestException:
        return "unreachable"
    except ValueError:
        return "bad_reply"
    if resp.status_code != 200 or not isinstance(reply, dict):
        return "bad_reply"
    try:
        crypto.verify(
            str(reply.get("msg_signature")),
            str(reply.get("timeStamp")),
            str(reply.get("nonce")),
            str(reply.get("encrypt")),
            check_time=False,
        )
        return "ok" if crypto.decrypt(str(reply.get("encrypt"))) == "success" else "bad_reply"
    except DingTalkCryptoError:
        return "bad_reply"


async def _check_url(state: EmulatorState, app: EmulatedApp, reg: Registration) -> None:
    # requests is blocking and this handler runs on uvicorn's event loop: use a worker thread.
    outcome = await asyncio.to_thread(deliver, state, app, reg, {"EventType": "check_url"})
    if outcome == "unreachable":
        raise OapiError(71012, "url地址访问异常")
    if outcome == "bad_reply":
        raise OapiError(71009, "返回文本非success")


async def _store(request: Request, app: EmulatedApp, *, update: bool) -> dict[str, Any]:
    state = state_of(request)
    reg = _parse_registration(state, await read_params(request))
    callbacks = _callbacks(state)
    exists = app.corp_id in callbacks.registered
    if exists and not update:
        raise OapiError(71006, "回调地址已经存在")
    await _check_url(state, app, reg)
    with state.lock:
        callbacks.registered[app.corp_id] = reg
    return ok(state)


@router.post("/call_back/register_call_back")
async def register(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    return await _store(request, app, update=False)


@router.post("/call_back/update_call_back")
async def update(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    return await _store(request, app, update=True)


def _registered(state: EmulatorState, app: EmulatedApp) -> Registration:
    reg = _callbacks(state).registered.get(app.corp_id)
    if reg is None:
        raise OapiError(71007, "回调地址已不存在")
    return reg


@router.get("/call_back/get_call_back")
async def get(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    reg = _registered(state, app)
    return ok(state, call_back_tag=reg.tags, token=reg.token, aes_key=reg.aes_key, url=reg.url)


@router.get("/call_back/delete_call_back")
async def delete(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    _registered(state, app)
    with state.lock:
        del _callbacks(state).registered[app.corp_id]
    return ok(state)


@router.get("/call_back/get_call_back_failed_result")
async def failed_result(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        queue = _callbacks(state).failed.setdefault(app.corp_id, deque())
        page = [queue.popleft() for _ in range(min(FAILED_PAGE, len(queue)))]
        has_more = bool(queue)
    return ok(state, has_more=has_more, failed_list=page)


def subscribe(
    state: EmulatorState, app: EmulatedApp, *, url: str, token: str, aes_key: str, tags: list[str]
) -> None:
    """Save an HTTP event subscription as in the developer console: check_url first, as the console does.

    :raises ValueError: the URL did not answer the check with an encrypted ``success``.
    """
    state.add_secret(token)
    state.add_secret(aes_key)
    reg = Registration(tags=list(tags), token=token, aes_key=aes_key, url=url, console=True)
    outcome = deliver(state, app, reg, {"EventType": "check_url"})
    if outcome != "ok":
        raise ValueError(f"the console's check_url to {url} failed: {outcome}")
    with state.lock:
        _callbacks(state).console[app.app_key] = reg


def push_event(state: EmulatorState, app: EmulatedApp, event: dict[str, Any]) -> bool:
    """Push an event to each setup of the app that subscribes to it; the API's failures go to its failed list.

    :returns: whether every setup that got it acknowledged it.
    :raises LookupError: no setup subscribes to the event type (DingTalk would not send it at all).
    """
    kind = str(event.get("EventType", ""))
    callbacks = _callbacks(state)
    setups = [r for r in (callbacks.registered.get(app.corp_id), callbacks.console.get(app.app_key)) if r]
    if not setups:
        raise LookupError(
            f"no callback registered for corp {app.corp_id} nor subscribed for app {app.app_key}"
        )
    targets = [r for r in setups if kind in r.tags]
    if not targets:
        tags = sorted({t for r in setups for t in r.tags})
        raise LookupError(f"event type {kind!r} is not among the registered tags {tags}")
    delivered = True
    for reg in targets:
        outcome = deliver(state, app, reg, event)
        state.deliver("callback", reg.url, event, outcome=outcome, console=reg.console)
        delivered = delivered and outcome == "ok"
        # The console's failures are listed elsewhere (the failrecord API); only the old API's are here.
        if outcome != "ok" and not reg.console:
            item = {"event_time": int(state.clock.now() * 1000), "call_back_tag": kind, "corpid": app.corp_id}
            item.update({k: v for k, v in event.items() if k != "EventType"})
            with state.lock:
                callbacks.failed.setdefault(app.corp_id, deque()).append(item)
    return delivered
