"""The interactive card of a human-in-the-loop task: the variables the provider fills, the buttons it reads.

One contract between three parties: the card template an admin publishes in DingTalk's card platform
(docs/hitl.rst lists what to build), :class:`~..notifications.hitl.DingTalkHITLNotifier` that sends
the card, and :mod:`~..events.card_callback` that reads a click and answers with the card's new state.

DingTalk's rules ("Create and deliver cards", open.dingtalk.com/document/orgapp/create-and-deliver-cards):
every ``cardParamMap`` value is a string, keys at most 100 bytes, values at most 1 KB — so the body
is trimmed to fit and the full text stays in Airflow, one tap away.

Buttons: ``option_0`` … ``option_7``, each a "回传请求" (callback request) button. A click names its
option by the button's parameter ``option_index`` (``"0"`` …), or, if the template gives none, by the
button id ``option_<i>``. The index points into the options Airflow stored for the task, so a label
never has to round-trip through DingTalk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError

OUT_TRACK_PREFIX = "airflow-hitl-"
MAX_CARD_OPTIONS = 8
PARAM_KEY_MAX_BYTES = 100
PARAM_VALUE_MAX_BYTES = 1024
OUT_TRACK_ID_MAX_CHARS = 100
_CUT = "…"

# The variables of the template (all strings). "answerable" drives the buttons' visibility.
VARIABLES = (
    "subject",
    "body",
    "status",
    "status_text",
    "answerable",
    "airflow_url",
    "dag_id",
    "run_id",
    "task_id",
    *(f"option_{i}" for i in range(MAX_CARD_OPTIONS)),
)
PRIVATE_VARIABLES = ("notice",)
"""Per-user variables: what only the user who tapped sees (e.g. that they are not an approver)."""

APPROVE, REJECT = "Approve", "Reject"  # ApprovalOperator's fixed options
_VERBS = {APPROVE: "Approved", REJECT: "Rejected"}


def out_track_id(ti_id: str) -> str:
    """The card's ``outTrackId`` for a task instance try (Airflow gives each try its own id)."""
    return f"{OUT_TRACK_PREFIX}{ti_id}"


def ti_id_of(track_id: str) -> str | None:
    """The task instance id in an ``outTrackId`` the provider made, or ``None`` for anyone else's card."""
    if not track_id.startswith(OUT_TRACK_PREFIX):
        return None
    rest = track_id[len(OUT_TRACK_PREFIX) :]
    return rest if rest and len(rest) <= 64 and all(c.isalnum() or c == "-" for c in rest) else None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """Who answered, what, and when, as Airflow recorded it (``responded_by`` is ``None`` on a timeout)."""

    chosen_options: tuple[str, ...]
    responded_by: str | None
    responded_at: datetime | None


def card_answerable(*, multiple: bool, has_params: bool) -> bool:
    """Whether one tap can answer: one option to choose and no form to fill (else: answer in Airflow)."""
    return not multiple and not has_params


def pending_params(
    *,
    subject: str,
    body: str | None,
    options: Sequence[str],
    answerable: bool,
    airflow_url: str,
    dag_id: str,
    run_id: str,
    task_id: str,
) -> dict[str, str]:
    """The card as sent: subject, body, one button per option (the first eight), the link to Airflow."""
    shown = list(options)[:MAX_CARD_OPTIONS] if answerable else []
    params = {
        "subject": fit(subject),
        "body": fit(body or "", suffix=f"\n\n[Full text in Airflow]({airflow_url})" if body else ""),
        "status": "pending",
        "status_text": _pending_text(len(options), answerable),
        "answerable": "true" if shown else "false",
        "airflow_url": airflow_url,
        "dag_id": fit(dag_id),
        "run_id": fit(run_id),
        "task_id": fit(task_id),
    }
    for i in range(MAX_CARD_OPTIONS):
        params[f"option_{i}"] = fit(shown[i]) if i < len(shown) else ""
    check_params(params)
    return params


def _pending_text(count: int, answerable: bool) -> str:
    if not answerable:
        return "This request needs input a card cannot carry: answer it in Airflow."
    if count > MAX_CARD_OPTIONS:
        return f"Tap an option, or see all {count} options in Airflow."
    return "Waiting for an answer."


def final_params(answer: Answer | None, *, state: str | None = None) -> dict[str, str]:
    """The shared card once the task is answered (or closed): no buttons, who chose what and when."""
    hidden = {"answerable": "false", **{f"option_{i}": "" for i in range(MAX_CARD_OPTIONS)}}
    if answer is None:
        what = f"({state})" if state else ""
        return {
            **hidden,
            "status": "closed",
            "status_text": fit(f"No longer waiting for an answer {what}".strip()),
        }
    return {**hidden, "status": "answered", "status_text": fit(answer_text(answer))}


def answer_text(answer: Answer) -> str:
    """``Approved by Alice at 2026-05-01 09:30 UTC`` (or ``Chose "load_eu" …``, or the timeout default)."""
    chosen = list(answer.chosen_options)
    if len(chosen) == 1 and chosen[0] in _VERBS:
        what = _VERBS[chosen[0]]
    else:
        what = "Chose " + ", ".join(f'"{c}"' for c in chosen)
    when = f" at {_utc(answer.responded_at)}" if answer.responded_at else ""
    who = f" by {answer.responded_by}" if answer.responded_by else " (timed out: the default was taken)"
    return f"{what}{who}{when}"


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def chosen_index(content: str | Mapping[str, Any] | None) -> int | None:
    """The option index a click names (``params.option_index`` or button id ``option_<i>``), or ``None``."""
    try:
        data = json.loads(content) if isinstance(content, str) else content
    except (ValueError, RecursionError):
        return None
    private = data.get("cardPrivateData") if isinstance(data, Mapping) else None
    if not isinstance(private, Mapping):
        return None
    params = private.get("params")
    raw: Any = params.get("option_index") if isinstance(params, Mapping) else None
    if raw is None:
        ids = private.get("actionIds")
        first = ids[0] if isinstance(ids, list) and ids else None
        raw = first[len("option_") :] if isinstance(first, str) and first.startswith("option_") else None
    text = str(raw) if raw is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 2):
        return None
    index = int(text)
    return index if index < MAX_CARD_OPTIONS else None


def fit(text: str, *, suffix: str = "", limit: int = PARAM_VALUE_MAX_BYTES) -> str:
    """``text + suffix`` in at most ``limit`` UTF-8 bytes, cutting the text (never the suffix) with "…"."""
    whole = text + suffix
    if len(whole.encode("utf-8")) <= limit:
        return whole
    room = limit - len((_CUT + suffix).encode("utf-8"))
    cut = text.encode("utf-8")[: max(0, room)].decode("utf-8", "ignore")
    return cut + _CUT + suffix


def check_params(params: Mapping[str, Any], *, field: str = "card_param_map") -> None:
    """DingTalk's ``cardParamMap`` rules, checked before anything is sent: strings, key and value sizes."""
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise DingTalkValidationError(field, f"has a key {key!r}; keys must be non-empty strings")
        if (size := len(key.encode("utf-8"))) > PARAM_KEY_MAX_BYTES:
            raise DingTalkValidationError(
                f"{field}[{key[:20]!r}…]", "key is too long (bytes)", size=size, limit=PARAM_KEY_MAX_BYTES
            )
        if not isinstance(value, str):
            raise DingTalkValidationError(
                f"{field}[{key!r}]",
                f"must be a string (DingTalk takes strings only), not {type(value).__name__}",
            )
        if (size := len(value.encode("utf-8"))) > PARAM_VALUE_MAX_BYTES:
            raise DingTalkValidationError(
                f"{field}[{key!r}]", "value is too long (bytes)", size=size, limit=PARAM_VALUE_MAX_BYTES
            )


def parse_user_map(raw: Any, *, field: str = "hitl_users") -> dict[str, str]:
    """The ``dingtalk`` connection's ``hitl_users``: ``{"<DingTalk userId>": "<Airflow user id>"}``.

    A JSON object or its text; empty or absent means nobody may answer from DingTalk (the safe default).
    """
    if raw in (None, "", {}):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise DingTalkValidationError(
                field, "must be a JSON object of DingTalk userId to Airflow user id"
            ) from None
    if not isinstance(raw, Mapping):
        raise DingTalkValidationError(field, "must be an object of DingTalk userId to Airflow user id")
    users: dict[str, str] = {}
    for dingtalk_id, airflow_id in raw.items():
        if not isinstance(airflow_id, str) or not airflow_id.strip() or not str(dingtalk_id).strip():
            raise DingTalkValidationError(
                f"{field}[{dingtalk_id!r}]", "must map a userId to an Airflow user id"
            )
        users[str(dingtalk_id).strip()] = airflow_id.strip()
    return users
