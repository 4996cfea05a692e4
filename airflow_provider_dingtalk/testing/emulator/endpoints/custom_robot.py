"""Custom robot webhook: ``POST /robot/send`` with DingTalk's security checks and rate limit.

As DingTalk's "Custom robots send group messages" and "Customize robot security settings" pages
(help.dingtalk.io) describe them.

Robots are registered with :meth:`DingTalkEmulator.add_robot`. Checks, in order: token (300001),
signature and timestamp when the robot has a secret (310000), body size (460101), a 20-a-minute
sliding window on emulator time (130101, then blocked for 10 emulator minutes), custom keywords
(310000). A ``msgUuid`` seen before within an hour is answered ``ok`` but not shown again.

A body that is not a JSON object is 40035 ``缺少参数 json``; one whose message does not match
:data:`.schemas.CUSTOM_ROBOT` gets DingTalk's newer parameter error, 400402 naming the field
(``错误描述:参数 markdown --》 title 缺失，或者参数格式不正确``, as seen from the real webhook), before
the rate limit counts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_dingtalk.testing.emulator.http import OapiError, ok, state_of
from airflow_provider_dingtalk.testing.emulator.schemas import (
    CUSTOM_ROBOT,
    CUSTOM_ROBOT_AT,
    Problem,
    check_body,
)
from airflow_provider_dingtalk.testing.emulator.state import EmulatorState

router = APIRouter()

MAX_BODY_BYTES = 20000
PER_MINUTE = 20
BLOCK_SECONDS = 600
SIGN_WINDOW = 3600
UUID_MEMORY = 3600
_MORE = "more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
_TEXT_FIELDS = ("content", "text", "title", "singleTitle")


@dataclass(kw_only=True)
class EmulatedRobot:
    """A custom robot in a group: its token, optional signing secret and optional keywords."""

    name: str
    token: str
    secret: str | None = None
    keywords: tuple[str, ...] = ()
    sends: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    seen_uuids: dict[str, float] = field(default_factory=dict)


@dataclass
class Robots:
    by_token: dict[str, EmulatedRobot] = field(default_factory=dict)

    def named(self, name: str) -> EmulatedRobot | None:
        return next((r for r in self.by_token.values() if r.name == name), None)


def robots(state: EmulatorState) -> Robots:
    return state.store("custom_robot", Robots)


def add_robot(
    state: EmulatorState, name: str, *, secret: bool | str = True, keywords: tuple[str, ...] = ()
) -> EmulatedRobot:
    """Register a robot (or return the one already called ``name``); ``secret=True`` makes one up."""
    with state.lock:
        existing = robots(state).named(name)
        if existing is not None:
            return existing
        if secret is True:
            secret = "SEC" + state.random_hex(64)
        robot = EmulatedRobot(
            name=name, token=state.random_hex(64), secret=secret or None, keywords=tuple(keywords)
        )
        robots(state).by_token[robot.token] = robot
        state.add_secret(robot.token)
        state.add_secret(robot.secret)
        return robot


def expected_sign(secret: str, timestamp: str) -> str:
    """The sign DingTalk computes, before URL encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@router.post("/robot/send")
async def robot_send(request: Request) -> dict[str, Any]:
    state = state_of(request)
    query = request.query_params  # decoded once, as DingTalk's gateway does
    raw = await request.body()
    with state.lock:
        robot = robots(state).by_token.get(query.get("access_token") or "")
        if robot is None:
            raise OapiError(300001, "token is not exist")
        now = state.clock.now()
        if robot.secret:
            _check_signature(robot.secret, query.get("timestamp"), query.get("sign"), now)
        if len(raw) > MAX_BODY_BYTES:
            raise OapiError(460101, f"message too long, exceed {MAX_BODY_BYTES} bytes")
        body = parse_body(raw)
        _rate_limit(robot, now)
        if robot.keywords and not any(k in _texts(body) for k in robot.keywords):
            raise OapiError(310000, f"keywords not in content, {_MORE}")
        msg_uuid = body.get("msgUuid")
        for seen, at in list(robot.seen_uuids.items()):
            if at <= now - UUID_MEMORY:
                del robot.seen_uuids[seen]
        if isinstance(msg_uuid, str) and msg_uuid in robot.seen_uuids:
            return ok(state)  # a retry of a message already shown
        if isinstance(msg_uuid, str):
            robot.seen_uuids[msg_uuid] = now
    state.deliver("custom_robot", robot.name, body, msg_uuid=msg_uuid)
    return ok(state)


def _check_signature(secret: str, timestamp: str | None, sign: str | None, now: float) -> None:
    if not timestamp or not timestamp.isdigit() or abs(int(timestamp) / 1000 - now) > SIGN_WINDOW:
        raise OapiError(310000, f"invalid timestamp, {_MORE}")
    if not sign or not hmac.compare_digest(sign.encode(), expected_sign(secret, timestamp).encode()):
        raise OapiError(310000, f"sign not match, {_MORE}")


def _rate_limit(robot: EmulatedRobot, now: float) -> None:
    while robot.sends and robot.sends[0] <= now - 60:
        robot.sends.popleft()
    if robot.blocked_until > now or len(robot.sends) >= PER_MINUTE:
        if robot.blocked_until <= now:
            robot.blocked_until = now + BLOCK_SECONDS
        raise OapiError(130101, "send too fast, exceed 20 times per minute")
    robot.sends.append(now)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A custom-robot message body, checked as the webhook (and a sessionWebhook) checks it."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OapiError(40035, "缺少参数 json")
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in CUSTOM_ROBOT:
        raise _param_error(Problem("msgtype", "choice"))
    problem = check_body(body.get(msgtype), CUSTOM_ROBOT[msgtype], msgtype)
    if problem is None and "at" in body:
        problem = check_body(body["at"], CUSTOM_ROBOT_AT, "at")
    if problem is None and "msgUuid" in body and not isinstance(body["msgUuid"], str):
        problem = Problem("msgUuid", "type")
    if problem is None:
        extra = sorted(set(body) - {"msgtype", msgtype, "at", "msgUuid"})
        problem = Problem(extra[0], "unknown") if extra else None
    if problem:
        raise _param_error(problem)
    return body


def _param_error(problem: Problem) -> OapiError:
    where = problem.path.replace(".", " --》 ")
    return OapiError(
        400402,
        f"错误描述:参数 {where} {problem.describe()}，或者参数格式不正确; 解决方案:请填充上对应参数;"
        "参考链接:请参考本接口对应文档查看参数获取方式;",
    )


def _texts(body: dict[str, Any]) -> str:
    """Everything a keyword may appear in: the message's text fields (and its links' titles)."""
    payload = body[body["msgtype"]]
    parts = [str(payload.get(k, "")) for k in _TEXT_FIELDS]
    parts += [str(item.get("title", "")) for item in payload.get("links", []) + payload.get("btns", [])]
    return "\n".join(parts)
