"""Interactive cards: ``createAndDeliver``, update, the HTTP callback route, and what each user sees.

As DingTalk documents them (open.dingtalk.com/document/orgapp/: "Create and deliver cards", "Update
card", "Register card callback address", "Card callback"). Templates exist only once published in
DingTalk's card platform; here :func:`publish_template` plays the admin (the emulator starts with
:data:`DEMO_TEMPLATE_ID` published). Error codes are DingTalk's where its pages name them
(``param.templateNotExist``, ``param.templateUnpublished``, ``param.cardAlreadyExist``,
``param.openSpaceIdInvalid``, ``param.userIdNotExist``, ``param.callbackRouteKeyEmpty``,
``param.callbackUrlEmpty``, ``param.callbackRouteKeyExist``); the pages name none for a non-string
``cardParamMap`` value, an unknown route key or an unknown card, so those (``param.cardParamMapInvalid``,
``param.callbackRouteKeyNotExist``, ``param.cardNotExist``) are ours.

A click (:func:`click`) is sent as DingTalk sends it: an HTTP POST signed with ``x-ddpaas-signature``
to the route's URL, or a Stream CALLBACK on ``/v1.0/card/instances/callback``; the reply (within 2 s)
updates the card for everyone (``cardData``) and for the user who tapped (``userPrivateData``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.testing.emulator.endpoints.directory import directory
from airflow_provider_dingtalk.testing.emulator.http import V1Error, read_v1_json, state_of, v1_app
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

DEMO_TEMPLATE_ID = "dingtalk-emulator-hitl.schema"
REPLY_DEADLINE = 2.0  # seconds DingTalk waits for a click's reply ("Card callback")
STREAM_TOPIC = "/v1.0/card/instances/callback"
KEY_MAX_BYTES, VALUE_MAX_BYTES, OUT_TRACK_ID_MAX = 100, 1024, 100
# (app, topic, click payload, pinned connection or None) → the ack's card update, None if none in 2 s
StreamSender = Callable[[EmulatedApp, str, dict[str, Any], str | None], dict[str, Any] | None]


@dataclass(kw_only=True)
class Card:
    """One card instance: its shared variables, each user's private ones, and where it was delivered."""

    out_track_id: str
    app_key: str
    template_id: str
    callback_type: str
    route_key: str | None
    spaces: list[tuple[str, str]]  # ("IM_ROBOT", userId) or ("IM_GROUP", openConversationId)
    data: dict[str, str]
    private: dict[str, dict[str, str]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)  # every change, in order: for tests

    def view(self, user_id: str | None = None) -> dict[str, str]:
        """What ``user_id`` sees: the shared variables with that user's private ones on top."""
        return {**self.data, **(self.private.get(user_id, {}) if user_id else {})}

    def can_see(self, state: EmulatorState, user_id: str) -> bool:
        for kind, space in self.spaces:
            if kind == "IM_ROBOT" and space == user_id:
                return True
            if kind == "IM_GROUP" and directory(state).has_user(user_id):  # every member sees a group's card
                return True
        return False


@dataclass(kw_only=True)
class Route:
    url: str
    api_secret: str


@dataclass
class Cards:
    templates: dict[str, bool] = field(default_factory=lambda: {DEMO_TEMPLATE_ID: True})  # id → published
    cards: dict[str, Card] = field(default_factory=dict)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)  # (app, route key) → route
    stream: StreamSender | None = None  # set by a Stream endpoint when an app holds a connection


def cards(state: EmulatorState) -> Cards:
    return state.store("interactive_cards", Cards)


def publish_template(state: EmulatorState, template_id: str, *, published: bool = True) -> None:
    with state.lock:
        cards(state).templates[template_id] = published


@dataclass(frozen=True, kw_only=True)
class ClickResult:
    """What a click did: the reply the app sent (``None``: no answer within 2 s) and how long it took."""

    status: int
    reply: dict[str, Any] | None
    seconds: float
    transport: str


def _check_param_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise V1Error(400, "param.cardParamMapInvalid", f"{where}必须是对象")
    for key, item in value.items():
        if not isinstance(item, str):
            raise V1Error(400, "param.cardParamMapInvalid", f"{where}.{key}的值必须是字符串")
        if len(key.encode()) > KEY_MAX_BYTES or len(item.encode()) > VALUE_MAX_BYTES:
            raise V1Error(400, "param.cardParamMapInvalid", f"{where}.{key}超过长度限制")
    return dict(value)


def _spaces(state: EmulatorState, body: dict[str, Any], app: EmulatedApp) -> list[tuple[str, str]]:
    raw = body.get("openSpaceId")
    if not isinstance(raw, str) or not raw:
        raise V1Error(400, "param.openSpaceIdInvalid", "openSpaceId不合法")
    spaces = []
    for part in raw.split(";"):
        kind, _, space = part.removeprefix("dtv1.card//").partition(".")
        if not part.startswith("dtv1.card//") or kind not in ("IM_ROBOT", "IM_GROUP") or not space:
            raise V1Error(400, "param.openSpaceIdInvalid", f"openSpaceId不合法: {part}")
        if kind == "IM_ROBOT":
            if (body.get("imRobotOpenDeliverModel") or {}).get("spaceType") != "IM_ROBOT":
                raise V1Error(
                    400, "param.openSpaceIdInvalid", "imRobotOpenDeliverModel.spaceType必须是IM_ROBOT"
                )
            if not directory(state).has_user(space):
                raise V1Error(400, "param.userIdNotExist", f"用户不存在: {space}")
        else:
            if not space.startswith("cid"):
                raise V1Error(400, "param.openSpaceIdInvalid", f"openConversationId不合法: {space}")
            if (body.get("imGroupOpenDeliverModel") or {}).get("robotCode") != app.app_key:
                raise V1Error(400, "param.openSpaceIdInvalid", "imGroupOpenDeliverModel.robotCode不合法")
        spaces.append((kind, space))
    return spaces


@router.post("/v1.0/card/instances/createAndDeliver")
async def create_and_deliver(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    store = cards(state)
    template = body.get("cardTemplateId")
    if template not in store.templates:
        raise V1Error(400, "param.templateNotExist", "卡片模板不存在")
    if not store.templates[template]:
        raise V1Error(400, "param.templateUnpublished", "卡片模板未发布")
    track = body.get("outTrackId")
    if not isinstance(track, str) or not track or len(track) > OUT_TRACK_ID_MAX:
        raise V1Error(400, "param.outTrackIdInvalid", "outTrackId不合法")
    data = _check_param_map((body.get("cardData") or {}).get("cardParamMap", {}), "cardData.cardParamMap")
    callback_type = body.get("callbackType", "STREAM")
    route_key = body.get("callbackRouteKey")
    if callback_type == "HTTP" and (app.app_key, str(route_key)) not in store.routes:
        raise V1Error(400, "param.callbackRouteKeyNotExist", "callbackRouteKey未注册")
    spaces = _spaces(state, body, app)
    with state.lock:
        if track in store.cards:
            raise V1Error(400, "param.cardAlreadyExist", "卡片已存在")
        card = Card(
            out_track_id=track,
            app_key=app.app_key,
            template_id=template,
            callback_type=str(callback_type),
            route_key=str(route_key) if route_key else None,
            spaces=spaces,
            data=data,
        )
        store.cards[track] = card
    results = []
    for kind, space in spaces:
        state.deliver(
            "interactive_card", space, {"outTrackId": track, "cardParamMap": dict(data)}, space_type=kind
        )
        results.append(
            {"spaceType": kind, "spaceId": space, "success": True, "carrierId": state.random_hex(16)}
        )
    return {"success": True, "result": {"outTrackId": track, "deliverResults": results}}


@router.put("/v1.0/card/instances")
async def update(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    card = cards(state).cards.get(str(body.get("outTrackId")))
    if card is None or card.app_key != app.app_key:
        raise V1Error(400, "param.cardNotExist", "卡片不存在")
    options = body.get("cardUpdateOptions") or {}
    with state.lock:
        if "cardData" in body:
            params = _check_param_map(
                (body.get("cardData") or {}).get("cardParamMap", {}), "cardData.cardParamMap"
            )
            card.data = {**card.data, **params} if options.get("updateCardDataByKey") else params
        for user, private in (body.get("privateData") or {}).items():
            params = _check_param_map((private or {}).get("cardParamMap", {}), f"privateData.{user}")
            old = card.private.get(user, {}) if options.get("updatePrivateDataByKey") else {}
            card.private[user] = {**old, **params}
        card.updates.append({"by": "api", "body": body})
    return {"success": True, "result": True}


@router.post("/v1.0/card/callbacks/register")
async def register(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    key, url, secret = body.get("callbackRouteKey"), body.get("callbackUrl"), body.get("apiSecret")
    state.add_secret(secret if isinstance(secret, str) else None)
    if not key:
        raise V1Error(400, "param.callbackRouteKeyEmpty", "callbackRouteKey不能为空")
    if not url:
        raise V1Error(400, "param.callbackUrlEmpty", "callbackUrl不能为空")
    store = cards(state)
    with state.lock:
        if (app.app_key, key) in store.routes and not body.get("forceUpdate"):
            raise V1Error(500, "param.callbackRouteKeyExist", "callbackRouteKey已存在")
        store.routes[(app.app_key, key)] = Route(url=url, api_secret=str(secret or ""))
    return {"success": True, "result": {"callbackUrl": url, "apiSecret": secret}}


def signature(api_secret: str, timestamp: str) -> str:
    """``x-ddpaas-signature``: Base64(HMAC-SHA256(key=apiSecret, msg=timestamp)) ("Card callback")."""
    digest = hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def click_payload(
    state: EmulatorState, card: Card, user_id: str, action: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The callback body DingTalk sends for a tap on the button ``action`` ("Card callback")."""
    app = state.apps[card.app_key]
    kind, space = next(((k, s) for k, s in card.spaces if k == "IM_ROBOT" and s == user_id), card.spaces[0])
    content = {"cardPrivateData": {"actionIds": [action], "params": params}}
    return {
        "type": "actionCallback",
        "outTrackId": card.out_track_id,
        "corpId": app.corp_id,
        "userId": user_id,
        "userIdType": 1,
        "spaceType": kind,
        "spaceId": space,
        "extension": "{}",
        "content": json.dumps(content, ensure_ascii=False),
    }


def click(
    state: EmulatorState,
    out_track_id: str,
    user_id: str,
    action: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    connection: str | None = None,
) -> ClickResult:
    """``user_id`` taps ``action`` on the card: send the callback, apply the reply. Blocking.

    :param params: the button's parameters (the template's; default ``{}``).
    :param headers: override the signature headers (a forged or replayed click).
    :param connection: a Stream card: the app's connection that gets the click (default: any one,
        as DingTalk picks).
    :raises LookupError: no such card, or the user cannot see it.
    """
    import requests

    store = cards(state)
    card = store.cards.get(out_track_id)
    if card is None:
        raise LookupError(f"no card {out_track_id!r}")
    if not card.can_see(state, user_id):
        raise LookupError(f"user {user_id!r} has not got card {out_track_id!r}")
    payload = click_payload(state, card, user_id, action, dict(params or {}))
    app = state.apps[card.app_key]
    started = time.monotonic()
    reply: Any = None
    if card.callback_type == "HTTP":
        route = store.routes[(card.app_key, str(card.route_key))]
        stamp = str(int(state.clock.now() * 1000))
        sent = {
            "x-ddpaas-signature-timestamp": stamp,
            "x-ddpaas-signature": signature(route.api_secret, stamp),
        }
        try:
            resp = requests.post(
                route.url, json=payload, headers={**sent, **(headers or {})}, timeout=REPLY_DEADLINE
            )
            status = resp.status_code
            reply = resp.json() if status == 200 else None
        except requests.Timeout:
            status = 504
        except (requests.RequestException, ValueError):
            status = 502
        transport = "HTTP"
    else:
        if store.stream is None:
            raise LookupError(
                f"card {out_track_id!r} calls back over Stream, and app {app.app_key} "
                "holds no Stream connection"
            )
        reply = store.stream(app, STREAM_TOPIC, payload, connection)
        status, transport = (200 if reply is not None else 504), "STREAM"
    seconds = time.monotonic() - started
    if seconds > REPLY_DEADLINE:
        reply, status = None, 504  # DingTalk dropped it: the card stays as it was
    if isinstance(reply, dict):
        apply_reply(state, card, user_id, reply)
    return ClickResult(
        status=status, reply=reply if isinstance(reply, dict) else None, seconds=seconds, transport=transport
    )


def apply_reply(state: EmulatorState, card: Card, user_id: str, reply: dict[str, Any]) -> None:
    """A click's reply: ``cardData`` for everyone, ``userPrivateData`` for the user who tapped."""
    options = reply.get("cardUpdateOptions") or {}
    with state.lock:
        shared = (reply.get("cardData") or {}).get("cardParamMap")
        if isinstance(shared, dict):
            params = {k: str(v) for k, v in shared.items()}
            card.data = {**card.data, **params} if options.get("updateCardDataByKey", True) else params
        private = (reply.get("userPrivateData") or {}).get("cardParamMap")
        if isinstance(private, dict):
            old = card.private.get(user_id, {}) if options.get("updatePrivateDataByKey", True) else {}
            card.private[user_id] = {**old, **{k: str(v) for k, v in private.items()}}
        card.updates.append({"by": "click", "user_id": user_id, "reply": reply})
