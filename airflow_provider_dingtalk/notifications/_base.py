"""What every DingTalk notifier shares: render on a copy, never raise, never hang.

Airflow calls a notifier from a task's (or DAG's) state-change callback, so an alert that fails must
not turn into a second failure, and an alert that waits must not keep the worker slot forever:

* ``BaseNotifier.render_template_fields`` overwrites the instance's fields with their rendered values,
  and one instance is reused (``default_args``, several tasks in one process). We render on a shallow
  copy each call, so the second alert is rendered from the templates, not from the first one's text.
* ``BaseNotifier.__call__`` re-raises whatever ``notify`` raises. Ours logs DingTalk's errcode (and
  hint) and returns; a template that fails to render is logged and the default alert goes out instead.
* The send runs in a daemon thread joined for at most ``timeout`` seconds. Inside it, retries and
  rate-limit waits get ``timeout`` as their budget too, so normally the send gives up by itself; the
  join is the hard stop if a single HTTP call outlives the budget.

Imported by DAG files at parse time: no hook or ``requests`` at module level.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_dingtalk.notifications._alert import AlertFacts, facts_from_context
from airflow_provider_dingtalk.operators._common import RenderMessageFields

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import DAG, Context

    from airflow_provider_dingtalk.messages import Message
    from airflow_provider_dingtalk.retry import RetryPolicy

DEFAULT_TIMEOUT = 60.0
"""Seconds a notifier may take in all, retries and rate-limit waits included."""
_SOFT_SHARE = 0.9


class DingTalkBaseNotifier(RenderMessageFields, BaseNotifier):
    """Common behaviour of the DingTalk notifiers; use one of its subclasses.

    :param message: your own message instead of the default alert: a message object or a raw dict in
        the channel's dialect, its values Jinja templates. It is sent as it is (a message DingTalk
        would refuse is logged, and the default alert goes out instead); not with ``text``.
    :param text: the message text (markdown), a Jinja template; empty means the default alert.
    :param title: the title shown in the conversation list, a Jinja template; defaults to the
        alert's subject (e.g. "❌ Task failed: etl.load").
    :param timeout: at most this many seconds for the whole alert, retries and waits included;
        after it the notifier logs and returns.
    :param retry_policy: override the default retry policy (its total time is capped by ``timeout``).
    :param context: the context to send for when the notifier is awaited (``await notifier``); Airflow's
        ``CallbackTrigger`` passes it. Not needed when Airflow calls ``notifier(context)``.
    """

    def __init__(
        self,
        *,
        message: Message | Mapping[str, Any] | None = None,
        text: str | None = None,
        title: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        context: Context | None = None,
    ) -> None:
        # ``context``: Airflow's CallbackTrigger (Deadline Alerts on the triggerer) passes it only to a
        # class whose signature accepts it (``accepts_context``), and then awaits the instance.
        super().__init__(context=context)
        if timeout <= 0:
            from airflow_provider_dingtalk.exceptions import DingTalkValidationError

            raise DingTalkValidationError("timeout", "must be more than 0 seconds")
        if message is not None and (text is not None or title is not None):
            from airflow_provider_dingtalk.exceptions import DingTalkValidationError

            raise DingTalkValidationError("message", "give message, or text (and title), not both")
        self.message = message
        self.text = text
        self.title = title
        self.timeout = float(timeout)
        self.retry_policy = retry_policy
        self._template_error: str | None = None

    # -- Airflow's entry points ------------------------------------------------------------------

    def __call__(self, *args: Any) -> None:
        """Send the alert for ``context``; logs instead of raising, returns within ``timeout``."""
        context: dict[str, Any] = (
            dict(args[0])
            if len(args) == 1
            else {
                "dag": args[0],
                "task_list": args[1],
                "blocking_task_list": args[2],
                "blocking_tis": args[3],
            }
        )
        self._rendered(context).notify(context)  # type: ignore[arg-type]

    def get_template_env(self, dag: DAG | None = None) -> jinja2.Environment:
        # apache/airflow#64649: under `dags test` / dag.test() a DAG-level notifier gets the serialized
        # DAG, which has no get_template_env; fall back to Airflow's default (sandboxed) environment.
        if dag is not None and not hasattr(dag, "get_template_env"):
            dag = None
        return super().get_template_env(dag=dag)

    def notify(self, context: Context) -> None:
        """Send the alert (templates must already be rendered); never raises, bounded by ``timeout``."""
        done = threading.Event()

        def run() -> None:
            try:
                # Retries and waits stop a little early, so the send usually ends (and says why) by itself.
                self._send_alert(context, deadline=time.monotonic() + self.timeout * _SOFT_SHARE)
            except Exception as exc:  # an alert must never fail the callback it reports on
                self.log.error("DingTalk alert not delivered: %s", describe_error(exc))
            finally:
                done.set()

        worker = threading.Thread(target=run, name=f"dingtalk-alert-{type(self).__name__}", daemon=True)
        worker.start()
        if not done.wait(self.timeout):
            self.log.error(
                "DingTalk alert not delivered within %.0f s (timeout); giving up so the worker is not held.",
                self.timeout,
            )

    def __await__(self) -> Generator[Any, None, None]:
        """``await notifier`` (the triggerer): render on a copy and never raise, as ``__call__`` does.

        ``BaseNotifier.__await__`` renders the instance's own fields in place and lets a template
        error propagate, failing the callback.
        """
        return self._notify_awaited().__await__()

    async def _notify_awaited(self) -> None:
        context = _triggerer_context(self.context)
        await self._rendered(context).async_notify(context)  # type: ignore[arg-type]

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (Deadline Alerts): the same bounded, never-raising send, off the loop.

        The triggerer awaits the notifier after rendering its templates; the send blocks on HTTP, so it
        runs in a worker thread and the triggerer's event loop keeps serving other triggers.
        """
        import asyncio

        await asyncio.to_thread(self.notify, context)

    # -- for subclasses ---------------------------------------------------------------------------

    def _send_alert(self, context: Context, *, deadline: float) -> None:
        raise NotImplementedError

    def _policy(self, deadline: float) -> RetryPolicy:
        """The retry policy with its total time cut to what is left of the budget."""
        from airflow_provider_dingtalk.retry import RetryPolicy

        policy = self.retry_policy or RetryPolicy()
        left = max(0.1, deadline - time.monotonic())
        return replace(policy, max_elapsed=min(policy.max_elapsed, left))

    def _facts(self, context: Mapping[str, Any]) -> AlertFacts:
        return facts_from_context(context)

    def _user_message(
        self,
        facts: AlertFacts,
        size_of: Callable[[Message], int],
        limit: int,
        *,
        suffix: str = "",
        parse: Callable[[Mapping[str, Any]], Message],
    ) -> Message | None:
        """The user's own message, or their text as markdown cut to fit ``limit``; ``None`` means: send
        the default alert (no message of their own, a template error, or a message DingTalk refuses).

        :param parse: the channel's parser for a raw dict.
        """
        if self._template_error:
            return None
        if self.message is not None:
            from airflow_provider_dingtalk.exceptions import DingTalkValidationError
            from airflow_provider_dingtalk.messages import Message

            try:
                own = self.message if isinstance(self.message, Message) else parse(self.message)
                own = with_suffix(own, suffix)
                size = size_of(own)  # raises what the renderer refuses, but for the size
            except DingTalkValidationError as exc:
                self.log.error(
                    "DingTalk notifier message refused (%s); sending the default alert instead.", exc
                )
                return None
            if size > limit:
                self.log.error(
                    "DingTalk notifier message is %d bytes, over DingTalk's %d (trim its text with "
                    "fit_text); sending the default alert instead.",
                    size,
                    limit,
                )
                return None
            return own
        if not self.text:
            return None
        return fit_markdown(str(self.title or facts.subject), str(self.text), size_of, limit, suffix=suffix)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        # Airflow 3.2 (task-sdk 1.2.0) keeps the template when it renders to an empty value (``if
        # rendered_content:`` in the private ``Templater._do_render_template_fields``), so "{{ '' }}"
        # would be sent as a user id; 3.3 (task-sdk 1.3.2) stores every result. Both versions' public
        # ``render_template_fields`` and ``render_template`` let us store every result on either.
        if jinja_env is None:
            jinja_env = self.get_template_env(dag=context.get("dag"))
        seen: set[int] = set()
        for name in self.template_fields:
            setattr(self, name, self.render_template(getattr(self, name), context, jinja_env, seen))

    # -- internals --------------------------------------------------------------------------------

    def _rendered(self, context: dict[str, Any]) -> DingTalkBaseNotifier:
        """A copy with the templates rendered; on a template error, a copy that sends the default alert."""
        clone = copy.copy(self)
        try:
            # BaseNotifier's own first step of __call__/__await__ (puts the template fields in the context);
            # it has no public name in task-sdk 1.2/1.3, and we run the same steps on a copy.
            clone._update_context(context)  # type: ignore[arg-type]
            clone.render_template_fields(context)  # type: ignore[arg-type]
        except Exception as exc:
            self.log.error("DingTalk notifier template failed (%s); sending the default alert instead.", exc)
            clone = copy.copy(self)
            clone._template_error = str(exc)
        return clone


def _triggerer_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as the alert reads it: on the triggerer ``dag_run`` is JSON, not a DagRun.

    Airflow 3.3.2's ``Deadline.handle_miss`` sends ``DAGRunResponse(...).model_dump(mode="json")``;
    as attributes its ``dag_id`` and ``run_id`` reach the default alert (templates read either).
    """
    from types import SimpleNamespace

    context = dict(context)
    if isinstance(context.get("dag_run"), Mapping):
        context["dag_run"] = SimpleNamespace(**context["dag_run"])
    return context


def fit_markdown(
    title: str, text: str, size_of: Callable[[Message], int], limit: int, *, suffix: str = ""
) -> Message:
    """``Markdown(title, text + suffix)``, the text (not the suffix) trimmed until it fits ``limit``."""
    from airflow_provider_dingtalk.messages import Markdown, fit_text

    message: Message = Markdown(title=title, text=text + suffix)
    size = size_of(message)
    budget = len(text.encode("utf-8"))
    while size > limit and budget > 0:
        budget = max(0, budget - (size - limit) - 16)  # JSON escaping: trim a little more each pass
        message = Markdown(title=title, text=fit_text(text, budget) + suffix)
        size = size_of(message)
    return message


def with_suffix(message: Message, suffix: str) -> Message:
    """``message`` with ``suffix`` after its text, for the message types that have one to extend."""
    from airflow_provider_dingtalk.messages import OA, ActionCard, Link, Markdown, Text

    if not suffix:
        return message
    match message:
        case Text():
            return replace(message, content=message.content + suffix)
        case Markdown() | ActionCard() | Link():
            return replace(message, text=message.text + suffix)
        case OA() if message.content:
            return replace(message, content=message.content + suffix)
    return message


def measure(render: Callable[[Message], str], limit: int) -> Callable[[Message], int]:
    """A ``size_of`` for :func:`fit_alert`: the bytes ``render`` produces, even past the channel's limit.

    The renderers refuse an oversized message, but say its size; any other refusal is re-raised.
    """
    from airflow_provider_dingtalk._json import utf8_len
    from airflow_provider_dingtalk.exceptions import DingTalkValidationError

    def size_of(message: Message) -> int:
        try:
            return utf8_len(render(message))
        except DingTalkValidationError as exc:
            if exc.limit == limit and exc.size is not None:
                return exc.size
            raise

    return size_of


def describe_error(exc: BaseException) -> str:
    """One log line: DingTalk's errcode / code, its message and hint, or the error's type and text."""
    from airflow_provider_dingtalk.exceptions import DingTalkAPIError

    if isinstance(exc, DingTalkAPIError):
        return str(exc)  # "DingTalk <api> failed with errcode N: errmsg hint (request id …)"
    cause = getattr(exc, "cause", None)
    if isinstance(cause, DingTalkAPIError):
        return f"{exc} [errcode {cause.errcode}]"
    return f"{type(exc).__name__}: {exc}"
