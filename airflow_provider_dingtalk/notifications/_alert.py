"""What an alert says: facts gathered from the Airflow context, rendered to fit a channel's byte limit.

Shared by every notifier, so the three channels tell the same story in their own dialect.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_dingtalk.messages import Message

_ICONS = {"failed": "❌", "up_for_retry": "🔁", "success": "✅", "running": "▶️", "awaiting_input": "✋"}
_EXCEPTION_MIN_BYTES = 64
_TRACEBACK_FRAMES = 3  # the innermost frames of the user's code: where it broke, and what called it
# Airflow 3.2 runs task failure callbacks without the error in the context (3.3 passes it).
_NO_ERROR_IN_CONTEXT = "(this Airflow version does not pass the error to callbacks: see the log)"


@dataclass(frozen=True, kw_only=True)
class AlertFacts:
    """Everything a person needs to act on a task or DAG run state change."""

    dag_id: str
    state: str
    task_id: str | None = None
    map_index: int | None = None
    run_id: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    exception: str | None = None
    duration: float | None = None
    hostname: str | None = None
    log_url: str | None = None
    action_url: str | None = None
    reason: str | None = None
    dag_level: bool = False
    """A DAG's own callback: the task fields describe the run's last task, not the subject."""

    @property
    def subject(self) -> str:
        icon = _ICONS.get(self.state, "ℹ️")
        state = self.state.replace("_", " ")
        if self.dag_level or not self.task_id:
            return f"{icon} DAG run {state}: {self.dag_id}"
        what = f"{self.dag_id}.{self.task_id}"
        if self.map_index is not None:
            what += f"[{self.map_index}]"
        return f"{icon} Task {state}: {what}"

    @property
    def identity(self) -> str:
        """Unique per task-instance try: DingTalk drops identical work notifications sent twice a day."""
        parts = (
            (self.dag_id, self.run_id)
            if self.dag_level
            else (self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number)
        )
        return "/".join(str(p) for p in parts if p is not None)

    def lines(self) -> list[str]:
        rows: list[tuple[str, object]] = [
            ("DAG", self.dag_id),
            ("Last task" if self.dag_level else "Task", self.task_id),
            ("Map index", self.map_index),
            ("Run", self.run_id),
        ]
        if self.try_number is not None:
            total = f" of {self.max_tries + 1}" if self.max_tries is not None else ""
            rows.append(("Try", f"{self.try_number}{total}"))
        rows += [("State", self.state), ("Reason", self.reason)]
        if self.duration is not None:
            rows.append(("Duration", f"{self.duration:.1f} s"))
        rows.append(("Host", self.hostname))
        return [f"- **{k}**: {v}" for k, v in rows if v is not None and v != ""]


def facts_from_context(context: Mapping[str, Any]) -> AlertFacts:
    """Collect the facts from a task or DAG callback context (and a HITL notifier's)."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    # Airflow puts "reason" only in a DAG's own callbacks (with the run's last task as "ti").
    dag_level = "reason" in context
    state = _dag_state(context, dag_run) if dag_level else _state_of(ti) or _state_of(dag_run) or "unknown"
    map_index = getattr(ti, "map_index", None)
    return AlertFacts(
        dag_id=str(dag_id),
        state=state,
        task_id=getattr(ti, "task_id", None),
        map_index=map_index if isinstance(map_index, int) and map_index >= 0 else None,
        run_id=getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None),
        try_number=getattr(ti, "try_number", None),
        max_tries=getattr(ti, "max_tries", None),
        exception=_exception_text(context.get("exception"))
        or (_NO_ERROR_IN_CONTEXT if not dag_level and state in ("failed", "up_for_retry") else None),
        duration=_duration(dag_run) if dag_level else _duration(ti) or _duration(dag_run),
        hostname=getattr(ti, "hostname", None) or socket.gethostname(),
        log_url=_log_url(ti),
        action_url=_hitl_link(context),
        reason=context.get("reason"),
        dag_level=dag_level,
    )


def fit_alert(
    facts: AlertFacts,
    render: Callable[[AlertFacts], Message],
    size_of: Callable[[Message], int],
    limit: int,
) -> Message:
    """Render ``facts``, trimming the exception (never anything else) until the channel accepts the size."""
    from airflow_provider_dingtalk.messages import fit_text

    message = render(facts)
    if facts.exception is None or size_of(message) <= limit:
        return message
    base = size_of(render(replace(facts, exception="")))
    budget = limit - base
    for _ in range(8):  # JSON escaping makes the first guess optimistic; a few passes always converge
        if budget < _EXCEPTION_MIN_BYTES:
            break
        trimmed = replace(facts, exception=fit_text(facts.exception, budget))
        message = render(trimmed)
        over = size_of(message) - limit
        if over <= 0:
            return message
        budget -= over + 8
    message = render(replace(facts, exception="(error text too long for this channel; see the log)"))
    if size_of(message) > limit:
        raise DingTalkValidationError(
            "alert", "does not fit even without the error text", size=size_of(message), limit=limit
        )
    return message


def markdown_body(facts: AlertFacts, *, intro: str | None = None, with_link: bool = True) -> str:
    parts = [f"### {facts.subject}"]
    if intro:
        parts.append(intro)
    parts.append("\n".join(facts.lines()))
    if facts.exception:
        quoted = "\n".join(f"> {line}" if line else ">" for line in facts.exception.splitlines())
        parts.append(f"**Error**\n\n{quoted}")
    if with_link and facts.action_url:
        parts.append(f"[Respond in Airflow]({facts.action_url})")
    if with_link and facts.log_url:
        parts.append(f"[View log]({facts.log_url})")
    return "\n\n".join(parts)


def default_alert(facts: AlertFacts, *, card: bool = True) -> Message:
    """The alert sent when the user gave no text: an action card with "Respond" / "View log" buttons
    (``card=True`` and there is a link), else markdown with the links inline."""
    from airflow_provider_dingtalk.messages import ActionCard, Button, Markdown
    from airflow_provider_dingtalk.messages._checks import BUTTON_URL_MAX_CHARS, CARD_TITLE_MAX_CHARS

    buttons = [
        Button(title=title, url=url)
        for title, url in (("Respond in Airflow", facts.action_url), ("View log", facts.log_url))
        if url and len(url) <= BUTTON_URL_MAX_CHARS
    ]
    if not card or not buttons:
        return Markdown(title=facts.subject, text=markdown_body(facts))
    # A link too long for a button stays in the text, so the card never loses it.
    body = markdown_body(facts, with_link=False)
    for url, label in ((facts.action_url, "Respond in Airflow"), (facts.log_url, "View log")):
        if url and len(url) > BUTTON_URL_MAX_CHARS:
            body += f"\n\n[{label}]({url})"
    title = facts.subject[:CARD_TITLE_MAX_CHARS]
    if len(buttons) == 1:
        return ActionCard(title=title, text=body, single_title=buttons[0].title, single_url=buttons[0].url)
    return ActionCard(title=title, text=body, buttons=buttons, btn_orientation="1")


def _state_of(obj: object) -> str | None:
    state = getattr(obj, "state", None)
    if state is None:
        return None
    return str(getattr(state, "value", state))


def _dag_state(context: Mapping[str, Any], dag_run: object) -> str:
    """The run's outcome: its state once final, else what the callback's reason says."""
    state = _state_of(dag_run)
    if state in ("success", "failed"):
        return state
    return "success" if context.get("reason") == "success" else "failed"


def _exception_text(exc: object) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, BaseException):
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if exc.__traceback__ is not None:
            frames = traceback.format_list(_users_frames(exc.__traceback__))
            text = text + "\n\nTraceback (innermost last):\n" + "".join(frames).rstrip()
    else:
        text = str(exc)
    return _redact_airflow_secrets(text)


def _users_frames(tb: TracebackType) -> list[traceback.FrameSummary]:
    """The innermost frames outside Airflow's own packages (its task runner, the PythonOperator's
    ``execute_callable``, ``callback_runner``): those are the same in every alert and crowd out the
    user's code. Where an error is wholly Airflow's, its frames are shown."""
    frames = traceback.extract_tb(tb)
    airflow = sys.modules.get("airflow")
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in getattr(airflow, "__path__", ()))
    own = [f for f in frames if not os.path.realpath(f.filename).startswith(roots)] if roots else frames
    return (own or frames)[-_TRACEBACK_FRAMES:]


def _redact_airflow_secrets(text: str) -> str:
    """Apply Airflow's secrets masker (connection passwords, masked variables) before text leaves."""
    # airflow.sdk.log.redact (the masker airflow.sdk.log.mask_secret feeds), not airflow.sdk._shared's:
    # the one public module that offers it, in task-sdk 1.2.0 (Airflow 3.2.0, our floor) and 1.3.2
    # (Airflow 3.3.2). airflow.sdk.log has no __all__, so strict mypy calls the name not re-exported.
    try:
        from airflow.sdk.log import redact  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - a future Airflow moved it; our own redaction still applies
        return text
    return str(redact(text))


def _duration(obj: object) -> float | None:
    start = getattr(obj, "start_date", None)
    if not isinstance(start, dt.datetime):
        return None
    end = getattr(obj, "end_date", None)
    if not isinstance(end, dt.datetime):
        end = dt.datetime.now(tz=start.tzinfo)
    return max(0.0, (end - start).total_seconds())


def _log_url(ti: object) -> str | None:
    try:
        url = getattr(ti, "log_url", None)
    except Exception:  # building it needs config; an alert without a link beats no alert
        return None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _hitl_link(context: Mapping[str, Any]) -> str | None:
    """The "Required actions" page when the notifier runs for a human-in-the-loop task."""
    task = context.get("task")
    if task is None or not hasattr(task, "generate_link_to_ui_from_context"):
        return None
    try:
        link = task.generate_link_to_ui_from_context(context=context)
    except Exception:
        return None
    return link if isinstance(link, str) else None
