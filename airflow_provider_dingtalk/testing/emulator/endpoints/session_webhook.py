"""A robot message's ``sessionWebhook``: ``POST /robot/sendBySession?session=…`` answers in its conversation.

DingTalk's "Receive messages" page (open.dingtalk.com/document/orgapp/receive-message) puts
``sessionWebhook`` and ``sessionWebhookExpiredTime`` (ms) in every robot message; DingTalk's sample
messages expire 90 minutes after ``createAt``. The body is the custom robot's (text, markdown, link,
actionCard, feedCard, with ``at``), checked as ``/robot/send`` checks it. An unknown or expired session
is answered ``300001 session 不存在``, as DingTalk answers an expired one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_dingtalk.testing.emulator.endpoints.custom_robot import MAX_BODY_BYTES, parse_body
from airflow_provider_dingtalk.testing.emulator.http import OapiError, ok, state_of
from airflow_provider_dingtalk.testing.emulator.state import EmulatorState

router = APIRouter()

PATH = "/robot/sendBySession"
SESSION_TTL = 90 * 60.0


@dataclass(kw_only=True)
class Session:
    conversation_id: str
    expires_at: float


@dataclass
class Sessions:
    by_token: dict[str, Session] = field(default_factory=dict)


def _sessions(state: EmulatorState) -> Sessions:
    return state.store("session_webhook", Sessions)


def open_session(state: EmulatorState, base_url: str, message: dict[str, Any]) -> dict[str, Any]:
    """``sessionWebhook`` and ``sessionWebhookExpiredTime`` for a robot message about to be pushed."""
    token = state.random_hex(32)
    state.add_secret(token)  # whoever holds it can post in the conversation
    expires_at = state.clock.now() + SESSION_TTL
    with state.lock:
        _sessions(state).by_token[token] = Session(
            conversation_id=str(message.get("conversationId") or ""), expires_at=expires_at
        )
    return {
        "sessionWebhook": f"{base_url}{PATH}?session={token}",
        "sessionWebhookExpiredTime": int(expires_at * 1000),
    }


@router.post(PATH)
async def send_by_session(request: Request) -> dict[str, Any]:
    state = state_of(request)
    raw = await request.body()
    with state.lock:
        session = _sessions(state).by_token.get(request.query_params.get("session") or "")
        if session is None or session.expires_at <= state.clock.now():
            raise OapiError(300001, "session 不存在")
        if len(raw) > MAX_BODY_BYTES:
            raise OapiError(460101, f"message too long, exceed {MAX_BODY_BYTES} bytes")
        body = parse_body(raw)
    state.deliver("session_webhook", session.conversation_id, body)
    return ok(state)
