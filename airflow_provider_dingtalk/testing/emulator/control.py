"""``/_emulator/*``: the test-control API, for tests and DAGs that run the emulator in another process."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from airflow_provider_dingtalk.testing.emulator.http import state_of
from airflow_provider_dingtalk.testing.emulator.state import Fault

router = APIRouter(prefix="/_emulator")


@router.get("/requests")
async def requests_log(request: Request, path: str | None = None) -> list[dict[str, Any]]:
    state = state_of(request)
    with state.lock:
        return [asdict(r) for r in state.requests if path is None or r.path == path]


@router.get("/inbox")
async def inbox(request: Request, channel: str | None = None) -> list[dict[str, Any]]:
    state = state_of(request)
    with state.lock:
        return [asdict(d) for d in state.inbox if channel is None or d.channel == channel]


@router.get("/clock")
async def clock(request: Request) -> dict[str, float]:
    return {"now": state_of(request).clock.now()}


@router.post("/clock/advance")
async def advance(request: Request) -> dict[str, float]:
    state = state_of(request)
    body = await request.json()
    state.clock.advance(float(body["seconds"]))
    return {"now": state.clock.now()}


@router.post("/faults")
async def inject(request: Request) -> dict[str, str]:
    body = await request.json()
    known = {f.name for f in fields(Fault)}
    if not isinstance(body, dict) or "path" not in body or set(body) - known:
        raise HTTPException(422, f"a fault takes: {sorted(known)}")
    with state_of(request).lock:
        state_of(request).faults.append(Fault(**body))
    return {"status": "ok"}


@router.get("/apps")
async def apps(request: Request) -> list[dict[str, Any]]:
    """The configured apps, secrets included: this is the emulator, and its apps are test fixtures."""
    return [asdict(a) for a in state_of(request).apps.values()]


@router.get("/cards")
async def cards_list(request: Request) -> list[dict[str, Any]]:
    """Every interactive card: template, spaces, shared and private variables, changes so far."""
    from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import cards

    state = state_of(request)
    with state.lock:
        return [asdict(c) for c in cards(state).cards.values()]


@router.get("/cards/{out_track_id}")
async def card_view(request: Request, out_track_id: str, user_id: str | None = None) -> dict[str, str]:
    """What ``user_id`` sees on the card now (the shared variables without ``user_id``)."""
    from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import cards

    state = state_of(request)
    with state.lock:
        card = cards(state).cards.get(out_track_id)
        if card is None:
            raise HTTPException(404, f"no card {out_track_id!r}")
        return card.view(user_id)


@router.post("/cards/{out_track_id}/click")
async def card_click(request: Request, out_track_id: str) -> dict[str, Any]:
    """``{"user_id", "action", "params"?}``: the user taps a button; the callback goes out as DingTalk's."""
    import asyncio

    from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import click

    body = await request.json()
    if (
        not isinstance(body, dict)
        or not {"user_id", "action"} <= set(body)
        or set(body) - {"user_id", "action", "params"}
    ):
        raise HTTPException(422, 'a click takes {"user_id", "action", "params"?}')
    state = state_of(request)
    try:
        # The callback may go to a receiver served by this very process: not on the event loop.
        result = await asyncio.to_thread(
            click, state, out_track_id, str(body["user_id"]), str(body["action"]), params=body.get("params")
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return asdict(result)
