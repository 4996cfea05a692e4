"""A tap on a human-in-the-loop card: who may answer, writing the answer, and the card's new state.

Transport-independent: :meth:`CardClickHandler.handle` takes DingTalk's click payload (the HTTP
callback's body, or a Stream CALLBACK frame's ``data`` on ``/v1.0/card/instances/callback``) and
returns the reply that updates the card, which DingTalk applies if it arrives within 2 seconds
("Card callback", open.dingtalk.com/document/orgapp/event-callback-card). The HTTP transport is
:func:`add_card_callback_route`; a Stream listener only has to call ``handle``.

Who may answer (safe by default): the clicker's DingTalk userId must be mapped to an Airflow user id
(the ``dingtalk`` connection's extra ``hitl_users``: ``{"<DingTalk userId>": "<Airflow user id>"}``),
and that Airflow user must be one of the task's ``assigned_users``. Unmapped users, users mapped to
someone else, and every click on a task without assigned users are refused with a card reply only
the clicker sees; nothing changes in Airflow.

Only a parked task is answered: the notifier sends the card just before the task parks
(``awaiting_input``), and Airflow 3.3 mishandles an answer that comes too early. An answer written
while the task still runs can be lost on SQLite, which has no row locks (the park reads "no answer
yet" and parks for good); an answer right after the park resumes the task before the scheduler has
seen the parking worker exit, and the scheduler then takes that exit for the resumed try's and fails
it ("task state changed externally"). So a tap waits, up to ``max_wait`` seconds (inside DingTalk's
2 s), until the task has been parked for ``settle`` seconds, and otherwise is answered "tap again in
a moment" with nothing changed.

Applied once: Airflow's HITL record is the truth. Its write refuses a second answer (HTTP 409 in the
REST API), so a click after the UI, another approver or the timeout answered, however many API
servers receive clicks, only shows the final state.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_dingtalk.messages.hitl_card import (
    Answer,
    card_answerable,
    chosen_index,
    final_params,
    ti_id_of,
)

__all__ = [
    "AlreadyAnswered",
    "CardClickHandler",
    "HITLAnswers",
    "HITLRecord",
    "NotAllowed",
    "add_card_callback_route",
    "failed_reply",
    "verify_signature",
]

log = logging.getLogger(__name__)

NOT_APPROVER = "You are not an approver of this task; nothing was changed."
NO_ASSIGNEES = (
    "This task has no assigned users, so it cannot be answered from DingTalk: answer it in Airflow."
)
GONE = "This request no longer exists in Airflow (the task was cleared or deleted)."
IN_AIRFLOW = "This request needs input a card cannot carry: answer it in Airflow."
UNKNOWN_OPTION = "That button does not match an option of this task; nothing was changed."
ALREADY = "Already answered."
FAILED = "Your answer could not be recorded; try again, or answer in Airflow."
NOT_READY = "Airflow is still getting this request ready: tap again in a moment. Nothing was changed."
DEFAULT_MAX_AGE = 60.0
# A parked task is answered once it has been parked this long: the scheduler has by then seen the
# parking worker exit (one scheduler loop, about a second; on a loaded 2-core machine it was seen to
# take 5 s). A person rarely taps within seconds of the card arriving; a quicker tap is told to
# tap again, with nothing changed.
DEFAULT_SETTLE = 6.0
DEFAULT_MAX_WAIT = 1.0  # of DingTalk's 2 s for the reply
_POLL = 0.1
MAX_BODY_BYTES = 64 * 1024
# A finished try can no longer be answered; one that is still running (or queued) will be, once parked.
_FINISHED = {
    "success",
    "failed",
    "skipped",
    "upstream_failed",
    "removed",
    "up_for_retry",
    "up_for_reschedule",
}


@dataclass(frozen=True, kw_only=True)
class HITLRecord:
    """One task's human-in-the-loop request, as Airflow stores it."""

    ti_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    options: tuple[str, ...]
    multiple: bool
    has_params: bool
    assigned_users: Mapping[str, str] = field(default_factory=dict)  # Airflow user id → name
    answer: Answer | None = None
    ti_state: str | None = None
    parked_for: float | None = None  # seconds since the task parked (awaiting_input, deferred); None: not

    @property
    def waiting(self) -> bool:
        return self.answer is None and self.ti_state not in _FINISHED

    def ready(self, settle: float) -> bool:
        """Parked for ``settle`` seconds: an answer now resumes the task safely."""
        return self.waiting and self.parked_for is not None and self.parked_for >= settle


class AlreadyAnswered(Exception):
    """Someone (or the timeout) answered first; ``record`` is the state now."""

    def __init__(self, record: HITLRecord | None) -> None:
        self.record = record
        super().__init__("already answered")


class NotAllowed(Exception):
    """Airflow refused the answer (its auth manager, or the option); the text is for the clicker."""


class HITLAnswers(Protocol):
    """Where HITL records are read and answered (:class:`~.hitl_answers.AirflowHITLAnswers` in Airflow)."""

    def get(self, ti_id: str) -> HITLRecord | None: ...

    def answer(self, record: HITLRecord, *, option: str, user_id: str, user_name: str) -> HITLRecord: ...


class CardClickHandler:
    """Click payload in, card update out.

    :param answers: reads and writes Airflow's HITL records.
    :param user_map: DingTalk userId → Airflow user id (a function, so a changed connection applies).
    :param settle: answer a task once it has been parked this many seconds (see the module's text).
    :param max_wait: wait at most this many seconds for that; then ask the clicker to tap again.
    :param clock: monotonic seconds (for tests).
    :param sleep: waits (for tests).
    """

    def __init__(
        self,
        *,
        answers: HITLAnswers,
        user_map: Callable[[], Mapping[str, str]],
        settle: float = DEFAULT_SETTLE,
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.answers, self.user_map = answers, user_map
        self.settle, self.max_wait, self.clock, self.sleep = settle, max_wait, clock, sleep

    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The reply for one click: the card's shared state and/or a notice for the clicker only."""
        ti_id = ti_id_of(str(payload.get("outTrackId") or ""))
        clicker = str(payload.get("userId") or "")
        if ti_id is None or not clicker:
            return _notice("This card is not an Airflow request.")
        record = self.answers.get(ti_id)
        if record is None:
            return _notice(GONE)
        if not record.waiting:
            return _final(record, ALREADY)
        airflow_user = self.user_map().get(clicker)
        if not record.assigned_users:
            return _notice(NO_ASSIGNEES)
        if airflow_user is None or airflow_user not in record.assigned_users:
            log.info("Card click on %s by DingTalk user %s refused: not an approver", ti_id, clicker)
            return _notice(NOT_APPROVER)
        if not card_answerable(multiple=record.multiple, has_params=record.has_params):
            return _notice(IN_AIRFLOW)
        index = chosen_index(payload.get("content"))
        if index is None or index >= len(record.options):
            return _notice(UNKNOWN_OPTION)
        option = record.options[index]
        parked = self._parked(record)
        if parked is None:
            log.info("Card click on %s by %s too early: the task is not parked yet", ti_id, airflow_user)
            return _notice(NOT_READY)
        if not parked.waiting:
            return _final(parked, ALREADY)
        record = parked
        try:
            done = self.answers.answer(
                record, option=option, user_id=airflow_user, user_name=record.assigned_users[airflow_user]
            )
        except AlreadyAnswered as race:
            return _final(race.record or self.answers.get(ti_id), ALREADY)
        except NotAllowed as refusal:
            return _notice(str(refusal))
        log.info("Card click on %s: %s chose %r (DingTalk user %s)", ti_id, airflow_user, option, clicker)
        return _final(done, f'You chose "{option}".')

    def _parked(self, record: HITLRecord) -> HITLRecord | None:
        """The record once ready (or answered meanwhile) within ``max_wait``; ``None`` if not by then."""
        deadline = self.clock() + self.max_wait
        while not record.ready(self.settle):
            if not record.waiting:
                return record
            left = deadline - self.clock()
            if left <= 0:
                return None
            self.sleep(min(_POLL, left))
            fresh = self.answers.get(record.ti_id)
            if fresh is None:
                return None
            record = fresh
        return record


def _notice(text: str) -> dict[str, Any]:
    return {
        "userPrivateData": {"cardParamMap": {"notice": text}},
        "cardUpdateOptions": {"updatePrivateDataByKey": True},
    }


def failed_reply() -> dict[str, Any]:
    """The reply when answering a click failed: the clicker is told, nothing else changes."""
    return _notice(FAILED)


def _final(record: HITLRecord | None, notice: str) -> dict[str, Any]:
    shared = final_params(record.answer if record else None, state=record.ti_state if record else None)
    return {
        "cardData": {"cardParamMap": shared},
        "userPrivateData": {"cardParamMap": {"notice": notice}},
        "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
    }


# -- the HTTP callback ------------------------------------------------------------------------------


def verify_signature(*, api_secret: str, timestamp: str, signature: str) -> bool:
    """``x-ddpaas-signature`` = Base64(HMAC-SHA256(key=apiSecret, msg=timestamp)), in constant time."""
    digest = hmac.new(api_secret.encode("utf-8"), timestamp.encode("utf-8"), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.encode("utf-8", "replace"))


class _Replays:
    """Signatures accepted within the freshness window: one is good for one click.

    DingTalk signs only the timestamp, not the body, so a captured signature would otherwise carry any
    forged click for as long as its timestamp is fresh. Per process: see docs/hitl.rst.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, signature: str, *, now: float, max_age: float) -> bool:
        with self._lock:
            for old in [s for s, at in self._seen.items() if at < now - 2 * max_age]:
                del self._seen[old]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


def add_card_callback_route(
    app: FastAPI,
    *,
    handler: CardClickHandler | Callable[[], CardClickHandler],
    api_secret: Callable[[], str | None],
    path: str = "/cards/callback",
    max_age: float = DEFAULT_MAX_AGE,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve DingTalk's HTTP card callback at ``path``: verify, then answer with the card update.

    ======  ==================================================================================
    200     verified: the reply (card update), also for refused approvers and late clicks
    400     body that is not a click payload
    401     missing, wrong, stale (older than ``max_age`` seconds) or already used signature
    413     body over 64 KB
    503     no api secret configured (``card_callback_api_secret``), or the handler failed
    ======  ==================================================================================

    :param handler: the click handler, or a function building it on first use.
    :param api_secret: the secret registered with the route (read when a click comes in).
    """
    replays = _Replays()
    built: list[CardClickHandler] = []

    def get_handler() -> CardClickHandler:
        if not built:
            built.append(handler if isinstance(handler, CardClickHandler) else handler())
        return built[0]

    def refuse(status: int, reason: str) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=status)

    async def callback(request: Request) -> JSONResponse:
        stamp = request.headers.get("x-ddpaas-signature-timestamp", "")
        signature = request.headers.get("x-ddpaas-signature", "")
        try:
            secret = await asyncio.to_thread(api_secret)
        except Exception as exc:
            log.warning("DingTalk card callback not configured: %s", type(exc).__name__)
            secret = None
        if not secret:
            return refuse(503, "card callback not configured")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16 and signature):
            return refuse(401, "missing signature")
        if not verify_signature(api_secret=secret, timestamp=stamp, signature=signature):
            log.warning("DingTalk card callback refused: wrong signature")
            return refuse(401, "wrong signature")
        now = clock()
        if abs(now - int(stamp) / 1000) > max_age:
            log.warning("DingTalk card callback refused: stale timestamp")
            return refuse(401, "stale timestamp")
        if not replays.first_use(signature, now=now, max_age=max_age):
            log.warning("DingTalk card callback refused: signature used before (replay)")
            return refuse(401, "signature already used")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return refuse(413, "body too large")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or payload.get("type", "actionCallback") != "actionCallback":
            return refuse(400, "not a card click")
        try:
            reply = await asyncio.to_thread(lambda: get_handler().handle(payload))
        except Exception as exc:  # never a 500 with a traceback; the card shows DingTalk's error
            log.error("DingTalk card click failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(failed_reply())
        return JSONResponse(reply)

    app.add_api_route(path, callback, methods=["POST"])
